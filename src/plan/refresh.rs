//! Refresh-only plans: what changed on the tenant outside thoth since the last apply, and
//! the state that records it (`plan --refresh-only`, `apply --refresh-only`). The tenant is
//! never written.

use std::collections::BTreeSet;

use super::{impact, Action, AttrChange, Change, Plan, RefreshCost, Shown};
use crate::model::Value;
use crate::remote::mapping::{read_row, same};
use crate::remote::Snapshot;
use crate::schema::{Kind, Refresh, Schema};
use crate::state::State;
use crate::vecmap::VecMap;

/// The refresh-only plan, and the state as the tenant now is.
pub fn build(state: &State, snapshot: &Snapshot, tenant: &str, refresh: RefreshCost) -> (Plan, State) {
    let mut refreshed = state.clone();
    let mut changes = Vec::new();
    for (address, entry) in &state.resources {
        let Some(rt) = Schema::get().of(address) else { continue };
        let remote = match rt.kind {
            Kind::Action | Kind::DataSource => continue,
            Kind::SettingsSection | Kind::Singleton => snapshot.object(rt, ""),
            _ => snapshot.object(rt, &entry.id),
        };
        let mut change = Change {
            address: address.clone(),
            kind: rt.kind,
            action: Action::NoOp,
            soft: false,
            prior_id: Some(entry.id.clone()),
            attrs: Vec::new(),
            identifying: Vec::new(),
            note: None,
            drifted: true,
            id_after: Shown::Value(Value::String(entry.id.clone())),
            create_before_destroy: false,
            prevent_destroy: entry.prevent_destroy,
            protective: rt.protective,
            desired: VecMap::new(),
            sensitive: BTreeSet::new(),
            prior: None,
            deps: BTreeSet::new(),
            import: None,
            moved_from: None,
            outside: true,
        };
        let Some(row) = remote else {
            change.action = Action::Forget;
            change.id_after = Shown::Absent;
            change.note = Some("deleted outside thoth: the state forgets it".to_owned());
            refreshed.resources.remove(address);
            changes.push(change);
            continue;
        };
        let now = read_row(rt, &row);
        let mut updated = entry.clone();
        for (name, attr) in &rt.attributes {
            if attr.sensitive || attr.refresh == Refresh::Never || attr.json.is_none() {
                continue;
            }
            let (Some(value), recorded) = (now.get(name), entry.attributes.get(name).map(Value::from_json)) else {
                continue;
            };
            if attr.refresh == Refresh::WhenPresent && value.as_str() == Some("") {
                continue;
            }
            // A secret the state holds as a digest (or a value computed from one) is compared
            // with the digest, and recorded and shown only as one.
            let secret = entry.secret_digests.contains_key(name)
                || attr.derived_from.iter().any(|f| entry.secret_digests.contains_key(f));
            if secret {
                let Some(digest) = entry.secret_digests.get(name) else { continue };
                let text = value.as_str().map_or_else(|| value.to_json().to_string(), str::to_owned);
                if state.digest_matches(&address.type_name, &entry.id, name, &text, digest) != Some(false) {
                    continue;
                }
                updated.secret_digests.insert(name.clone(), state.digest(&address.type_name, &entry.id, name, &text));
                change.sensitive.insert(name.clone());
                change.attrs.push(AttrChange {
                    name: name.clone(),
                    before: Shown::Sensitive,
                    after: Shown::Sensitive,
                    forces_replacement: false,
                    impact: impact::Impact::Unknown,
                    drift: true,
                });
                continue;
            }
            if recorded.as_ref().is_some_and(|r| same(attr, r, value)) {
                continue;
            }
            updated.attributes.insert(name.clone(), value.to_json());
            // Computed values move on their own (timestamps, counters): recorded, not reported.
            if !attr.is_settable() {
                continue;
            }
            change.attrs.push(AttrChange {
                name: name.clone(),
                before: recorded.clone().map_or(Shown::Absent, Shown::Value),
                after: Shown::Value(value.clone()),
                forces_replacement: false,
                impact: impact::of_attribute(attr.security.as_ref(), recorded.as_ref(), Some(value)),
                drift: true,
            });
        }
        if updated != *entry {
            refreshed.resources.insert(address.clone(), updated);
        }
        if !change.attrs.is_empty() {
            change.action = Action::Update;
            change.note = Some("changed outside thoth: the state takes the tenant's values".to_owned());
            changes.push(change);
        }
    }
    let plan = Plan { tenant_id: tenant.to_owned(), changes, refresh, refresh_only: true, ..Plan::default() };
    (plan, refreshed)
}
