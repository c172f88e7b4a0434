//! Refreshing: reading what the control plane holds for the objects a plan is about, with as
//! few calls as the API allows (one settings read, one list per upsert type, one read per
//! tracked bundle version), all at once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};
use tokio::task::JoinSet;

use super::{bundle, settings, upsert, ApiError, Client};
use crate::schema::{Kind, ResourceType, Schema};

/// What to read.
#[derive(Debug, Default)]
pub struct Needs {
    pub settings: bool,
    pub list_types: BTreeSet<String>,
    /// (type, version id) of tracked bundle versions.
    pub bundle_ids: BTreeSet<(String, String)>,
}

impl Needs {
    /// Adds what refreshing one object of this type (with this remote id, if tracked) needs.
    pub fn add(&mut self, rt: &ResourceType, id: Option<&str>) {
        match rt.kind {
            Kind::SettingsSection => self.settings = true,
            Kind::Upsert => {
                self.list_types.insert(rt.name.clone());
            }
            Kind::VersionedBundle => {
                if let Some(id) = id {
                    self.bundle_ids.insert((rt.name.clone(), id.to_owned()));
                }
            }
        }
    }
}

/// The control plane's objects as read at one moment.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub settings: Option<Map<String, Json>>,
    pub rows: BTreeMap<String, Vec<Map<String, Json>>>,
    pub bundles: BTreeMap<String, Option<Map<String, Json>>>,
}

enum Read {
    Settings(Map<String, Json>),
    Rows(String, Vec<Map<String, Json>>),
    Bundle(String, Option<Map<String, Json>>),
}

pub async fn refresh(client: &Client, needs: &Needs) -> Result<Snapshot, ApiError> {
    let schema = Schema::get();
    let mut tasks: JoinSet<Result<Read, ApiError>> = JoinSet::new();
    if needs.settings {
        let c = client.clone();
        tasks.spawn(async move { settings::read(&c).await.map(Read::Settings) });
    }
    for name in &needs.list_types {
        let (c, name) = (client.clone(), name.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            upsert::list(&c, rt).await.map(|rows| Read::Rows(name, rows))
        });
    }
    for (name, id) in &needs.bundle_ids {
        let (c, name, id) = (client.clone(), name.clone(), id.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            bundle::get(&c, rt, &id).await.map(|row| Read::Bundle(id, row))
        });
    }
    let _ = schema;
    let mut snapshot = Snapshot::default();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Read::Settings(doc))) => snapshot.settings = Some(doc),
            Ok(Ok(Read::Rows(name, rows))) => {
                snapshot.rows.insert(name, rows);
            }
            Ok(Ok(Read::Bundle(id, row))) => {
                snapshot.bundles.insert(id, row);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(ApiError::Transport {
                    method: "GET".to_owned(),
                    path: String::new(),
                    message: join.to_string(),
                });
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(snapshot),
    }
}

fn unknown_type(name: &str) -> ApiError {
    ApiError::Decode {
        method: "GET".to_owned(),
        path: String::new(),
        message: format!("unknown resource type `{name}`"),
    }
}

impl Snapshot {
    /// The remote object of a resource with the given remote id (the key value for upsert
    /// rows, the version id for bundles); `None` when the control plane does not have it.
    pub fn object(&self, rt: &ResourceType, id: &str) -> Option<&Map<String, Json>> {
        match rt.kind {
            Kind::SettingsSection => self.settings.as_ref(),
            Kind::Upsert => self.rows.get(&rt.name).and_then(|rows| upsert::find(rt, rows, id)),
            Kind::VersionedBundle => self.bundles.get(id).and_then(Option::as_ref),
        }
    }
}
