//! A Terraform state (format version 4) written with the `atensecurity/thoth` provider, read
//! into a thoth state: the same objects under the same addresses (module paths and instance
//! keys included), their remote ids, their attributes, and a salted digest instead of every
//! secret the Terraform state holds in plaintext.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::model::{Address, InstanceKey, Mode};
use crate::schema::{ResourceType, Schema};
use crate::state::{ResourceState, State};

#[derive(Deserialize)]
struct TfState {
    version: u32,
    #[serde(default)]
    resources: Vec<TfResource>,
    #[serde(default)]
    outputs: BTreeMap<String, TfOutput>,
}

#[derive(Deserialize)]
struct TfResource {
    #[serde(default)]
    module: Option<String>,
    mode: String,
    #[serde(rename = "type")]
    type_name: String,
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    instances: Vec<TfInstance>,
}

#[derive(Deserialize)]
struct TfInstance {
    #[serde(default)]
    index_key: Option<Json>,
    #[serde(default)]
    attributes: serde_json::Map<String, Json>,
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(Deserialize)]
struct TfOutput {
    value: Json,
    #[serde(default)]
    sensitive: bool,
}

/// The result of a migration: the state, and what it took and left.
#[derive(Debug)]
pub struct Migrated {
    pub state: State,
    /// The addresses moved, in order.
    pub moved: Vec<String>,
    /// What was left out, with the reason.
    pub skipped: Vec<String>,
    /// How many secrets were turned into digests.
    pub secrets: usize,
}

/// The attribute names older provider versions used, by their current names.
fn renamed(rt: &ResourceType, name: &str) -> Option<&'static str> {
    (name == "provider" && rt.attribute("provider").is_none() && rt.attribute("provider_name").is_some())
        .then_some("provider_name")
}

/// Reads a Terraform state's text into a thoth state for `tenant` (when known).
pub fn migrate(text: &str, tenant: Option<&str>) -> Result<Migrated, String> {
    let tf: TfState = serde_json::from_str(text).map_err(|e| format!("it is not a Terraform state: {e}"))?;
    if tf.version != 4 {
        return Err(format!(
            "it is a Terraform state of format version {}; this thoth reads version 4 (Terraform 0.12 and later)",
            tf.version
        ));
    }
    let mut state = State::new();
    state.tenant_id = tenant.map(str::to_owned);
    let mut moved = Vec::new();
    let mut skipped = Vec::new();
    let mut secrets = 0;
    for r in &tf.resources {
        let label = match &r.module {
            Some(m) => format!("{m}.{}.{}", r.type_name, r.name),
            None => format!("{}.{}", r.type_name, r.name),
        };
        if r.mode != "managed" {
            skipped.push(format!("`{label}`: a data source, read again on every plan"));
            continue;
        }
        if !r.provider.is_empty() && !r.provider.contains("atensecurity/thoth") {
            skipped.push(format!("`{label}`: managed by `{}`, not the thoth provider", r.provider));
            continue;
        }
        let Some(rt) = Schema::get().resource(&r.type_name) else {
            skipped.push(format!("`{label}`: not a resource type of the thoth provider"));
            continue;
        };
        for instance in &r.instances {
            let key = match &instance.index_key {
                None | Some(Json::Null) => None,
                #[allow(clippy::cast_possible_truncation)]
                Some(Json::Number(n)) => n.as_u64().map(|i| InstanceKey::Index(i as usize)),
                Some(Json::String(s)) => Some(InstanceKey::Name(s.clone())),
                Some(other) => {
                    skipped.push(format!("`{label}`: an instance key `{other}` that is neither a number nor a string"));
                    continue;
                }
            };
            let text = match &r.module {
                Some(m) => format!("{m}.{}.{}", r.type_name, r.name),
                None => format!("{}.{}", r.type_name, r.name),
            };
            let Some(address) = Address::parse(&text).map(|a| a.with_key(key)) else {
                skipped.push(format!("`{text}`: not an address thoth can read"));
                continue;
            };
            if address.mode != Mode::Managed {
                continue;
            }
            let Some(id) = instance.attributes.get("id").and_then(Json::as_str).filter(|s| !s.is_empty()) else {
                skipped.push(format!("`{address}`: it has no id"));
                continue;
            };
            if state.tenant_id.is_none() {
                state.tenant_id = instance.attributes.get("tenant_id").and_then(Json::as_str).map(str::to_owned);
            }
            let mut entry = ResourceState { id: id.to_owned(), ..ResourceState::default() };
            for (tf_name, value) in &instance.attributes {
                if value.is_null() {
                    continue;
                }
                let name = renamed(rt, tf_name).unwrap_or(tf_name.as_str());
                let Some(attr) = rt.attribute(name) else { continue };
                if attr.sensitive {
                    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                    if !text.is_empty() {
                        let digest = state.digest(&address.type_name, &entry.id, name, &text);
                        entry.secret_digests.insert(name.to_owned(), digest);
                        secrets += 1;
                    }
                    continue;
                }
                // An empty optional string is how Terraform records an unset one.
                if value.as_str() == Some("") && attr.mode != crate::schema::AttrMode::Required {
                    continue;
                }
                entry.attributes.insert(name.to_owned(), value.clone());
            }
            entry.dependencies = instance.dependencies.clone();
            moved.push(address.to_string());
            if state.resources.insert(address.clone(), entry).is_some() {
                return Err(format!("the Terraform state holds `{address}` twice"));
            }
        }
    }
    state.outputs = tf.outputs.into_iter().filter(|(_, o)| !o.sensitive).map(|(n, o)| (n, o.value)).collect();
    Ok(Migrated { state, moved, skipped, secrets })
}
