//! The descriptors, the client and the emulator agree: after the full example is applied,
//! every object's JSON on the emulator has every key its descriptor reads, and every key the
//! client sent is one the emulator kept. A descriptor naming a key the emulator never
//! returns, or a client sending a key the emulator drops, fails here.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Map, Value};
use thoth::model::Address;
use thoth::schema::{AttrMode, Encoding, Kind, Location, Refresh, ResourceType, RootName, Schema};

use crate::full::CANARIES;
use crate::support::Tenant;

/// The emulator's JSON object for one recorded resource, read the way its descriptor says.
fn remote_row(t: &Tenant, rt: &ResourceType, id: &str, recorded: &Map<String, Value>) -> Option<Map<String, Value>> {
    let fill = |template: &str| {
        let mut path = template.replace("{id}", id);
        for (name, value) in recorded {
            if let Some(text) = value.as_str() {
                path = path.replace(&format!("{{{name}}}"), text);
            }
        }
        path
    };
    let get = |root: RootName, path: &str| {
        let root = match root {
            RootName::Thoth => "thoth",
            RootName::Governance => "governance",
            RootName::Billing => "billing",
        };
        t.emulator.request_at(Method::GET, &format!("{root}/{path}"), None)
    };
    let find = |answer: Value, list_key: &str, field: &str, wanted: &str| {
        answer[list_key].as_array()?.iter().find(|row| row[field] == wanted).and_then(Value::as_object).cloned()
    };
    match rt.kind {
        Kind::SettingsSection => get(RootName::Thoth, "settings").as_object().cloned(),
        Kind::Upsert => {
            let key = rt.key_attribute()?.json.as_deref()?;
            find(get(RootName::Thoth, rt.path.as_deref()?), rt.list_key.as_deref()?, key, id)
        }
        Kind::VersionedBundle => get(RootName::Thoth, &format!("{}/{id}", rt.path.as_deref()?)).as_object().cloned(),
        Kind::Singleton | Kind::Object => {
            let read = rt.read.as_ref()?;
            let answer = get(read.root, &fill(&read.path));
            match (&read.list_key, &read.match_field) {
                (Some(list_key), Some(field)) => {
                    let wanted = recorded.get(field).and_then(Value::as_str).unwrap_or(id);
                    find(answer, list_key, field, wanted)
                }
                _ => answer.as_object().cloned(),
            }
        }
        Kind::Action | Kind::DataSource => None,
    }
}

fn has_path(row: &Map<String, Value>, dotted: &str) -> bool {
    let mut parts = dotted.split('.');
    let Some(mut current) = parts.next().and_then(|p| row.get(p)) else { return false };
    for part in parts {
        match current.as_object().and_then(|o| o.get(part)) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}

#[test]
fn descriptors_client_and_emulator_agree_on_every_key() {
    let t = Tenant::from_example("full");
    let approval = t.emulator.request_at(Method::POST, "_emulator/approvals", Some(serde_json::json!({})));
    let var = format!("approval_id={}", approval["approval_id"].as_str().expect("approval id"));
    t.run_with(&["apply", "--auto-approve", "--var", &var], &CANARIES).expect_code(0);
    let state = t.state();
    let schema = Schema::get();
    let mut problems = Vec::new();
    let mut covered = BTreeSet::new();
    for entry in state["resources"].as_array().expect("resources") {
        let address = Address::parse(entry["address"].as_str().expect("address")).expect("address parses");
        let rt = schema.resource(&address.type_name).expect("known type");
        if rt.kind == Kind::Action {
            continue;
        }
        let id = entry["id"].as_str().expect("id");
        let recorded = entry["attributes"].as_object().cloned().unwrap_or_default();
        let Some(row) = remote_row(&t, rt, id, &recorded) else {
            problems.push(format!("{address}: the emulator has no object `{id}` where the descriptor reads it"));
            continue;
        };
        covered.insert(rt.name.clone());
        for (name, attr) in &rt.attributes {
            let Some(path) = attr.read_json.as_deref().or(attr.json.as_deref()) else { continue };
            let special = path.starts_with('#') || path == "." || path.contains('*') || path.contains('|');
            let sent = attr.mode != AttrMode::Computed && attr.location == Location::Body;
            // Parameters of a call that the object does not keep are marked `refresh: never`.
            let skip = special
                || attr.sensitive
                || attr.refresh == Refresh::Never
                || attr.encoding == Encoding::JsonMergeTopLevel
                || (attr.mode != AttrMode::Computed && !sent)
                // Inputs the configuration leaves unset are not sent, so need not be kept.
                || (sent && !recorded.contains_key(name));
            if !skip && !has_path(&row, path) {
                let what = if sent { "the client sends" } else { "the descriptor reads" };
                problems.push(format!("{address}.{name}: {what} `{path}`, which the emulator's object lacks"));
            }
        }
    }
    let expected: BTreeSet<String> = schema
        .resource_names()
        .filter(|n| schema.resource(n).is_some_and(|rt| rt.kind != Kind::Action))
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = expected.difference(&covered).collect();
    assert!(missing.is_empty(), "the full example does not cover {missing:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
