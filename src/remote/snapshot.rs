//! Refreshing: reading what the control plane holds for the objects a plan is about, with as
//! few calls as the API allows (one settings read, one list per upsert type, one read per
//! tracked bundle version), all at once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};
use tokio::task::JoinSet;

use super::operation::{self, Placeholders};
use super::{bundle, settings, upsert, ApiError, Client};
use crate::model::Value;
use crate::schema::{Kind, ResourceType, Schema};
use crate::state::ResourceState;

/// What to read.
#[derive(Debug, Default)]
pub struct Needs {
    pub settings: bool,
    pub list_types: BTreeSet<String>,
    /// (type, version id) of tracked bundle versions.
    pub bundle_ids: BTreeSet<(String, String)>,
    /// Singletons to read, by type.
    pub singletons: BTreeSet<String>,
    /// Tracked objects to read: (type, id) with the recorded values their read path needs.
    pub objects: BTreeMap<(String, String), BTreeMap<String, Value>>,
}

impl Needs {
    /// Adds what refreshing one object of this type needs: its remote id and recorded
    /// attributes when it is tracked.
    pub fn add(&mut self, rt: &ResourceType, tracked: Option<&ResourceState>) {
        match rt.kind {
            Kind::SettingsSection => self.settings = true,
            Kind::Upsert => {
                self.list_types.insert(rt.name.clone());
            }
            Kind::VersionedBundle => {
                if let Some(t) = tracked {
                    self.bundle_ids.insert((rt.name.clone(), t.id.clone()));
                }
            }
            Kind::Singleton => {
                self.singletons.insert(rt.name.clone());
            }
            Kind::Object => {
                if let Some(t) = tracked {
                    let values = t.attributes.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
                    self.objects.insert((rt.name.clone(), t.id.clone()), values);
                }
            }
            // Actions are not read back, and data sources are read while planning.
            Kind::Action | Kind::DataSource => {}
        }
    }
}

/// The control plane's objects as read at one moment.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub settings: Option<Map<String, Json>>,
    pub rows: BTreeMap<String, Vec<Map<String, Json>>>,
    pub bundles: BTreeMap<String, Option<Map<String, Json>>>,
    pub singletons: BTreeMap<String, Map<String, Json>>,
    pub objects: BTreeMap<(String, String), Option<Map<String, Json>>>,
}

enum Read {
    Settings(Map<String, Json>),
    Rows(String, Vec<Map<String, Json>>),
    Bundle(String, Option<Map<String, Json>>),
    Singleton(String, Map<String, Json>),
    Object((String, String), Option<Map<String, Json>>),
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
    for name in &needs.singletons {
        let (c, name) = (client.clone(), name.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            let op = rt.read.as_ref().ok_or_else(|| unknown_type(&name))?;
            let at = Placeholders { id: None, tenant: c.tenant() };
            let row = operation::read_object(&c, rt, op, &BTreeMap::new(), &at).await?;
            Ok(Read::Singleton(name, row.unwrap_or_default()))
        });
    }
    for ((name, id), values) in &needs.objects {
        let (c, name, id, values) = (client.clone(), name.clone(), id.clone(), values.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            let op = rt.read.as_ref().ok_or_else(|| unknown_type(&name))?;
            let at = Placeholders { id: Some(&id), tenant: c.tenant() };
            let row = operation::read_object(&c, rt, op, &values, &at).await?;
            Ok(Read::Object((name, id), row))
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
            Ok(Ok(Read::Singleton(name, row))) => {
                snapshot.singletons.insert(name, row);
            }
            Ok(Ok(Read::Object(key, row))) => {
                snapshot.objects.insert(key, row);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(ApiError::Transport {
                    method: "GET".to_owned(),
                    path: String::new(),
                    message: join.to_string(),
                    sent: false,
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
            Kind::Singleton => self.singletons.get(&rt.name),
            Kind::Object => self.objects.get(&(rt.name.clone(), id.to_owned())).and_then(Option::as_ref),
            Kind::Action | Kind::DataSource => None,
        }
    }
}
