//! Bringing objects the tenant already has under management, from `import` blocks and
//! `thoth import ADDR ID`: the Terraform provider's import ids read per type, the objects
//! found in what the refresh read, and state entries made from them, so that the plan shows
//! "will be imported" followed by whatever the configuration changes.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::resource_type;
use crate::config::{Repetition, ResourceValues};
use crate::diag::{Diagnostic, Diagnostics};
use crate::evaluate::{self, Configuration};
use crate::model::{Address, Span, Value};
use crate::remote::mapping::read_row;
use crate::remote::snapshot::Needs;
use crate::remote::{operation, Snapshot};
use crate::schema::{Kind, Location, Refresh, ResourceType, Schema};
use crate::state::{ResourceState, State};
use crate::vecmap::VecMap;

/// One object to import: where it goes and the id it is known by.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub address: Address,
    pub id: String,
    /// The `import` block, when it comes from one.
    pub span: Option<Span>,
    /// The known non-secret values the configuration gives the object: what is recorded for
    /// attributes the control plane never reports.
    pub configured: VecMap<String, Value>,
}

/// An import id read for its type: the remote id when the id gives it, and the attributes
/// it sets (those a read of the object needs).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub remote_id: String,
    pub attributes: VecMap<String, Json>,
}

/// Reads an import id the way the Terraform provider's `ImportState` does for the type.
pub fn parse(rt: &ResourceType, id: &str, tenant: &str) -> Result<Parsed, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("the import id is empty".to_owned());
    }
    let rule = &rt.import;
    match rt.kind {
        // The shared documents of a tenant: any id stands for the tenant's.
        Kind::SettingsSection | Kind::Singleton => Ok(Parsed { remote_id: tenant.to_owned(), ..Parsed::default() }),
        Kind::Action => Ok(Parsed { remote_id: id.to_owned(), ..Parsed::default() }),
        _ if !rule.parts.is_empty() => {
            let parts: Vec<&str> = id.split('/').map(str::trim).collect();
            if parts.len() != rule.parts.len() || parts.iter().any(|p| p.is_empty()) {
                return Err(format!(
                    "`{id}` is not an import id of `{}`: write it as `{}`",
                    rt.name,
                    rule.parts.join("/")
                ));
            }
            let attributes = rule
                .parts
                .iter()
                .zip(&parts)
                .map(|(name, part)| (name.clone(), Json::String((*part).to_owned())))
                .collect();
            Ok(Parsed { remote_id: parts.join("/"), attributes })
        }
        _ if rule.last_segment => {
            let key = id.rsplit('/').next().unwrap_or(id).trim();
            if key.is_empty() {
                return Err(format!("`{id}` is not an import id of `{}`: write it as `KEY` or `TENANT/KEY`", rt.name));
            }
            Ok(Parsed { remote_id: key.to_owned(), ..Parsed::default() })
        }
        _ => Ok(Parsed { remote_id: id.to_owned(), ..Parsed::default() }),
    }
}

/// The targets of the configuration's `import` blocks, with `for_each` expanded and every
/// `to` and `id` evaluated (they may use variables and locals, and must be known).
pub fn targets(conf: &Configuration) -> (Vec<Target>, Diagnostics) {
    let mut diags = Diagnostics::default();
    if conf.module.imports.is_empty() {
        return (Vec::new(), diags);
    }
    let mut ignored = Diagnostics::default();
    let mut configured: BTreeMap<Address, VecMap<String, Value>> = BTreeMap::new();
    let mut ev = evaluate::walk(conf, &mut ignored, None, evaluate::Settled::Ignore, |_, decl, desired, _| {
        configured.insert(desired.address.clone(), known_values(desired));
        if conf.graph.referenced.contains(&decl.address) {
            evaluate::offline_values(desired)
        } else {
            ResourceValues::default()
        }
    });
    let mut out = Vec::new();
    for decl in &conf.module.imports {
        let repetition = decl.for_each.clone().map(Repetition::ForEach);
        let bindings = match ev.expand_repetition(repetition.as_ref(), "import") {
            Ok(b) if repetition.is_some() => b.into_iter().map(Some).collect(),
            Ok(_) => vec![None],
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for binding in bindings {
            ev.instance = binding;
            let address = match ev.address_of(&decl.to) {
                Ok(a) if a.mode == crate::model::Mode::Managed => a,
                Ok(_) => {
                    diags.push(
                        Diagnostic::error("data sources are read, not imported").at(decl.to.span, "a data source"),
                    );
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            match ev.eval(&decl.id) {
                Ok((Value::String(id), _)) if !id.trim().is_empty() => {
                    let configured = configured.get(&address).cloned().unwrap_or_default();
                    out.push(Target { address, id: id.trim().to_owned(), span: Some(decl.span), configured });
                }
                Ok((Value::Unknown, _)) => diags.push(
                    Diagnostic::error(format!("the import id of `{address}` is not known until apply"))
                        .at(decl.id.span, "depends on values the control plane assigns")
                        .help("import ids come from literals, variables or locals"),
                ),
                Ok((other, _)) => diags.push(
                    Diagnostic::error(format!("the import id of `{address}` must be a non-empty string"))
                        .at(decl.id.span, format!("this is a {}", other.type_name())),
                ),
                Err(d) => diags.push(d),
            }
        }
        ev.instance = None;
    }
    let mut seen = BTreeMap::new();
    for t in &out {
        if let Some(first) = seen.insert(t.address.clone(), t.span) {
            let mut d = Diagnostic::error(format!("`{}` is imported twice", t.address));
            if let Some(span) = t.span {
                d = d.at(span, "imported again here");
            }
            if let Some(span) = first {
                d = d.related(span, "first imported here");
            }
            diags.push(d);
        }
    }
    (out, diags)
}

/// The known, non-secret values of a lowered resource.
fn known_values(desired: &crate::config::Desired) -> VecMap<String, Value> {
    desired
        .values
        .iter()
        .filter(|(n, v)| v.is_known() && !desired.sensitive.contains(*n))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The target of `thoth import ADDR ID`, with what the configuration gives the object.
pub fn cli_target(conf: &Configuration, address: Address, id: String) -> Target {
    let mut configured = VecMap::new();
    let mut ignored = Diagnostics::default();
    let _ = evaluate::walk(conf, &mut ignored, None, evaluate::Settled::Ignore, |_, decl, desired, _| {
        if desired.address == address {
            configured = known_values(desired);
        }
        if conf.graph.referenced.contains(&decl.address) {
            evaluate::offline_values(desired)
        } else {
            ResourceValues::default()
        }
    });
    Target { address, id, span: None, configured }
}

fn located(target: &Target, message: String) -> Diagnostic {
    let d = Diagnostic::error(message);
    match target.span {
        Some(span) => d.at(span, "this import"),
        None => d,
    }
}

/// What the refresh must read for the targets the state does not have yet.
pub fn add_needs(targets: &[Target], state: &State, tenant: &str, needs: &mut Needs) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for target in targets.iter().filter(|t| !state.resources.contains_key(&t.address)) {
        let Some(rt) = Schema::get().resource(&target.address.type_name) else {
            diags.push(located(target, format!("`{}` is not a resource type thoth knows", target.address.type_name)));
            continue;
        };
        match parse(rt, &target.id, tenant) {
            Ok(parsed) => {
                let entry =
                    ResourceState { id: parsed.remote_id, attributes: parsed.attributes, ..ResourceState::default() };
                needs.add(rt, Some(&entry));
                // An upsert or a bundle is found in the lists the refresh reads anyway.
            }
            Err(e) => diags.push(located(target, format!("cannot import `{}`: {e}", target.address))),
        }
    }
    diags
}

/// The state entry of an object found on the tenant: its remote id, the attributes the
/// control plane reports, the attributes the import id sets, and for those it never reports
/// the configured values (no secret: a secret is never read back, so the first apply writes
/// the configured one).
fn entry_from(
    rt: &ResourceType,
    id: String,
    row: &Map<String, Json>,
    target: &Target,
    parsed: &Parsed,
) -> ResourceState {
    let mut attributes = parsed.attributes.clone();
    for (name, value) in read_row(rt, row) {
        if rt.attribute(&name).is_some_and(|a| !a.sensitive && a.refresh != Refresh::Never) && !value.is_null() {
            attributes.insert(name, value.to_json());
        }
    }
    // The attribute that is the id, when one is.
    if let Some(name) = rt.id.as_ref().and_then(|rule| rule.attribute.as_ref()) {
        attributes.entry(name.clone()).or_insert_with(|| Json::String(id.clone()));
    }
    for (name, value) in &target.configured {
        let unreported = rt.attribute(name).is_some_and(|a| {
            !a.sensitive && (a.refresh == Refresh::Never || a.json.is_none() || a.location != Location::Body)
        });
        if unreported && !attributes.contains_key(name) {
            attributes.insert(name.clone(), value.to_json());
        }
    }
    ResourceState { id, attributes, ..ResourceState::default() }
}

/// Adds to `state` an entry for every target it does not have, from the objects the refresh
/// read; returns the import id of each address imported. An id the tenant does not have,
/// or a target the state already tracks under another id, is an error naming it.
pub fn adopt(
    targets: &[Target],
    state: &mut State,
    snapshot: &mut Snapshot,
    tenant: &str,
) -> Result<BTreeMap<Address, String>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut imported = BTreeMap::new();
    for target in targets {
        let Some(rt) = Schema::get().resource(&target.address.type_name) else { continue };
        let Ok(parsed) = parse(rt, &target.id, tenant) else { continue };
        if let Some(existing) = state.resources.get(&target.address) {
            // Already imported, or managed: the block has done its work.
            if existing.id != parsed.remote_id && rt.kind != Kind::Action && !rt.import.read {
                diags.push(located(
                    target,
                    format!("`{}` already manages `{}`, not `{}`", target.address, existing.id, parsed.remote_id),
                ));
            }
            continue;
        }
        if let Some((other, _)) = state
            .resources
            .iter()
            .find(|(a, r)| a.type_name == rt.name && r.id == parsed.remote_id && rt.kind != Kind::Action)
        {
            diags.push(
                located(target, format!("`{}` is already managed as `{other}`", parsed.remote_id))
                    .help(format!("rename it with a `moved` block (from = {other}, to = {}) instead", target.address)),
            );
            continue;
        }
        let entry = match rt.kind {
            Kind::Action => Some(ResourceState { id: parsed.remote_id.clone(), ..ResourceState::default() }),
            Kind::SettingsSection | Kind::Singleton => {
                let row = snapshot.object(rt, "").map(std::borrow::Cow::into_owned).unwrap_or_default();
                Some(entry_from(rt, tenant.to_owned(), &row, target, &parsed))
            }
            _ => {
                let row = snapshot.object(rt, &parsed.remote_id).map(std::borrow::Cow::into_owned);
                row.and_then(|row| {
                    let values: VecMap<String, Value> =
                        parsed.attributes.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
                    let id = if rt.import.read {
                        let id = operation::remote_id(rt, &row, &values, tenant)?;
                        // Planning finds the object by the id it is recorded under.
                        snapshot.file_object(rt, &id, &row);
                        id
                    } else {
                        parsed.remote_id.clone()
                    };
                    Some(entry_from(rt, id, &row, target, &parsed))
                })
            }
        };
        match entry {
            Some(entry) => {
                imported.insert(target.address.clone(), target.id.clone());
                state.resources.insert(target.address.clone(), entry);
            }
            None => diags.push(
                located(
                    target,
                    format!("tenant `{tenant}` has no {} `{}` to import as `{}`", rt.name, target.id, target.address),
                )
                .help(
                    "check the id (the provider's import id format, such as `agent_id/pack_id` for pack assignments)",
                ),
            ),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(imported)
    }
}

/// Imported actions are recorded with the inputs the configuration gives them (secrets as
/// digests), so that importing one never runs it.
pub fn action_entry(change: &super::Change, state: &State) -> Option<ResourceState> {
    let rt = resource_type(&change.address);
    if rt.kind != Kind::Action {
        return None;
    }
    let mut entry = ResourceState { id: change.prior_id.clone().unwrap_or_default(), ..ResourceState::default() };
    for (name, value) in &change.desired {
        if change.sensitive.contains(name) {
            let text = value.as_str().map_or_else(|| value.to_json().to_string(), str::to_owned);
            let digest = state.digest(&change.address.type_name, &entry.id, name, &text);
            entry.secret_digests.insert(name.clone(), digest);
        } else {
            entry.attributes.insert(name.clone(), value.to_json());
        }
    }
    Some(entry)
}
