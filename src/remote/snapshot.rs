//! Refreshing: reading what the control plane holds for the objects a plan is about, with as
//! few calls as the API allows, all at once: one settings read, one list per upsert type, one
//! list of bundle versions, one list per object type that has a `list` operation (per parent
//! where the list path names one, such as an agent's packs), and a single read only for a
//! tracked object that no list shows (to tell a deleted object from a list that omits it).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};
use tokio::task::JoinSet;

use super::operation::{self, Placeholders};
use super::{bundle, mapping, settings, upsert, ApiError, Client};
use crate::model::Value;
use crate::schema::{Kind, ResourceType, Schema};
use crate::state::ResourceState;
use crate::vecmap::VecMap;

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
    pub objects: BTreeMap<(String, String), VecMap<String, Value>>,
    /// Types whose every object is wanted (an export): their lists are read and every row kept.
    pub every: BTreeSet<String>,
    /// Types whose list is read for the ids it shows (what a create would collide with).
    pub listed: BTreeSet<String>,
}

impl Needs {
    /// Asks for every object of a type the tenant holds, as far as a list shows them: a
    /// settings section, the rows of an upsert, every bundle version, every object of a list
    /// that needs no parent, a singleton.
    pub fn add_every(&mut self, rt: &ResourceType) {
        self.add(rt, None);
        if matches!(rt.kind, Kind::Object | Kind::VersionedBundle) {
            self.every.insert(rt.name.clone());
        }
    }

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
            Kind::Object => match tracked {
                Some(t) => {
                    let values = t.attributes.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
                    self.objects.insert((rt.name.clone(), t.id.clone()), values);
                }
                // An object the configuration names by an id it chooses may be on the tenant
                // already: its list tells.
                None if rt.id.as_ref().is_some_and(|rule| rule.attribute.is_some()) => {
                    self.listed.insert(rt.name.clone());
                }
                None => {}
            },
            // Actions are not read back, and data sources are read while planning.
            Kind::Action | Kind::DataSource => {}
        }
    }
}

/// The control plane's objects as read at one moment.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub settings: Option<Map<String, Json>>,
    /// Upsert rows by type and key; of rows with the same key, the first listed.
    pub rows: BTreeMap<String, BTreeMap<String, Packed>>,
    pub bundles: BTreeMap<String, Option<Packed>>,
    pub singletons: BTreeMap<String, Map<String, Json>>,
    pub objects: BTreeMap<(String, String), Option<Packed>>,
    /// Every live object the lists read show, by type: what unmanaged objects are found in.
    pub listed_ids: BTreeMap<String, BTreeSet<String>>,
}

/// A remote object kept as its JSON text until it is read. A plan holds every object of the
/// tenant until it is done, and a parsed object takes several times the memory of its text.
#[derive(Debug, Clone)]
pub struct Packed(Box<str>);

impl Packed {
    pub fn new(object: &Map<String, Json>) -> Packed {
        // A map of JSON values always serializes.
        Packed(serde_json::to_string(object).unwrap_or_default().into_boxed_str())
    }

    pub fn unpack(&self) -> Map<String, Json> {
        // The text was written by `new`.
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

/// The rows of an upsert list: by key (of rows with the same key, the first listed), and the
/// keys of those not disabled by a soft delete.
#[derive(Default)]
struct UpsertRows {
    by_key: BTreeMap<String, Packed>,
    live: BTreeSet<String>,
}

enum Read {
    Settings(Map<String, Json>),
    Rows(String, UpsertRows),
    Bundle(String, Option<Packed>),
    Singleton(String, Map<String, Json>),
    Object((String, String), Option<Packed>),
}

/// One list read: its path, and per type whose objects it shows, the recorded values of one
/// tracked object (for the placeholders of ids).
type ListReads = BTreeMap<String, BTreeMap<String, VecMap<String, Value>>>;

/// The list reads that cover the tracked objects: one per rendered list path, shared by the
/// types listed there (the three API key types share one list).
fn list_reads(client: &Client, needs: &Needs) -> ListReads {
    let mut reads = ListReads::new();
    for ((name, id), values) in &needs.objects {
        let Some(rt) = Schema::get().resource(name) else { continue };
        let Some(list) = &rt.list else { continue };
        let at = Placeholders { id: Some(id), tenant: client.tenant() };
        let Ok(path) = operation::render_template(&list.path, values, &at, list.escape) else { continue };
        reads.entry(path).or_default().entry(name.clone()).or_insert_with(|| values.clone());
    }
    for name in needs.bundle_ids.iter().map(|(n, _)| n) {
        if let Some(path) = Schema::get().resource(name).and_then(|rt| rt.path.clone()) {
            reads.entry(path).or_default().entry(name.clone()).or_default();
        }
    }
    for name in needs.every.iter().chain(&needs.listed) {
        let Some(rt) = Schema::get().resource(name) else { continue };
        let path = match rt.kind {
            Kind::VersionedBundle => rt.path.clone(),
            // A list under a parent (an agent's packs) cannot be read without the parent.
            _ => rt.list.as_ref().map(|l| l.path.clone()).filter(|p| !p.contains('{')),
        };
        if let Some(path) = path {
            reads.entry(path).or_default().entry(name.clone()).or_default();
        }
    }
    reads
}

/// Objects by (type, id).
type Listed = BTreeMap<(String, String), Packed>;

/// Reads the lists, and returns every object they show.
async fn read_lists(client: &Client, reads: ListReads) -> Result<Listed, ApiError> {
    let mut tasks: JoinSet<Result<Listed, ApiError>> = JoinSet::new();
    for (path, types) in reads {
        let c = client.clone();
        tasks.spawn(async move {
            let schema = Schema::get();
            let list_key =
                |name: &str| schema.resource(name).and_then(|rt| rt.list.as_ref()).and_then(|l| l.list_key.clone());
            let key = types.keys().find_map(|n| list_key(n)).unwrap_or_else(|| "data".to_owned());
            let mut found = Listed::new();
            for (n, text) in c.get_list(&path, &key).await?.into_iter().enumerate() {
                let row = super::row_of(&text, n).map_err(|m| c.bad_list(&path, m))?;
                let mut keys = Vec::new();
                let mut ours = false;
                for (name, values) in &types {
                    let rt = schema.resource(name).ok_or_else(|| unknown_type(name))?;
                    // A list shared by several types (API keys) tells them apart by the keys
                    // each type always sends.
                    if rt.fixed.iter().any(|(k, v)| row.get(k) != Some(v)) {
                        continue;
                    }
                    // Only a type whose id is a field of the row can tell a row without one.
                    ours |= matches!(rt.kind, Kind::Upsert | Kind::VersionedBundle)
                        || rt.id.as_ref().is_some_and(|rule| rule.response.is_some());
                    mapping::check_row(rt, &row).map_err(|why| c.bad_row(&path, n, &row, &why))?;
                    if let Some(id) = operation::remote_id(rt, &row, values, c.tenant()) {
                        keys.push((name.clone(), id));
                    }
                }
                // A row that no type reading this list can name would be dropped, and read
                // as an object deleted outside thoth.
                if ours && keys.is_empty() {
                    return Err(c.bad_row(&path, n, &row, "has no id"));
                }
                if !keys.is_empty() {
                    let packed = Packed(text.into());
                    for key in keys {
                        found.insert(key, packed.clone());
                    }
                }
            }
            Ok(found)
        });
    }
    let mut found = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let rows = joined.map_err(|e| ApiError::Transport {
            method: "GET".to_owned(),
            path: String::new(),
            message: e.to_string(),
            sent: false,
        })??;
        found.extend(rows);
    }
    Ok(found)
}

pub async fn refresh(client: &Client, needs: &Needs) -> Result<Snapshot, ApiError> {
    let mut snapshot = Snapshot::default();
    let mut tasks: JoinSet<Result<Read, ApiError>> = JoinSet::new();
    if needs.settings {
        let c = client.clone();
        tasks.spawn(async move { settings::read(&c).await.map(Read::Settings) });
    }
    for name in &needs.list_types {
        let (c, name) = (client.clone(), name.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            let mut rows = UpsertRows::default();
            let path = upsert::path(rt).to_owned();
            for (n, text) in upsert::list_text(&c, rt).await?.into_iter().enumerate() {
                let row = super::row_of(&text, n).map_err(|m| c.bad_list(&path, m))?;
                mapping::check_row(rt, &row).map_err(|why| c.bad_row(&path, n, &row, &why))?;
                let Some(id) = row.get(upsert::key_field(rt)).and_then(Json::as_str) else {
                    return Err(c.bad_row(&path, n, &row, &format!("has no `{}`", upsert::key_field(rt))));
                };
                // Rows disabled by a soft delete are gone as far as a reviewer is concerned.
                let live = rt.soft_delete.as_ref().is_none_or(|patch| patch.iter().any(|(k, v)| row.get(k) != Some(v)));
                if live {
                    rows.live.insert(id.to_owned());
                }
                rows.by_key.entry(id.to_owned()).or_insert_with(|| Packed(text.into()));
            }
            Ok(Read::Rows(name, rows))
        });
    }
    for name in &needs.singletons {
        let (c, name) = (client.clone(), name.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            let op = rt.read.as_ref().ok_or_else(|| unknown_type(&name))?;
            let at = Placeholders { id: None, tenant: c.tenant() };
            let row = operation::read_object(&c, rt, op, &VecMap::new(), &at).await?;
            Ok(Read::Singleton(name, row.unwrap_or_default()))
        });
    }
    // The lists are read while the reads above are in flight; what they do not show is read
    // one by one.
    let mut listed = read_lists(client, list_reads(client, needs)).await?;
    for (name, id) in listed.keys() {
        snapshot.listed_ids.entry(name.clone()).or_default().insert(id.clone());
    }
    let every: Vec<(String, String)> = listed.keys().filter(|(name, _)| needs.every.contains(name)).cloned().collect();
    for key in every {
        let Some(row) = listed.remove(&key) else { continue };
        let kind = Schema::get().resource(&key.0).map(|rt| rt.kind);
        if kind == Some(Kind::VersionedBundle) {
            snapshot.bundles.insert(key.1, Some(row));
        } else {
            snapshot.objects.insert(key, Some(row));
        }
    }
    for (name, id) in &needs.bundle_ids {
        if let Some(row) = listed.remove(&(name.clone(), id.clone())) {
            snapshot.bundles.insert(id.clone(), Some(row));
            continue;
        }
        let (c, name, id) = (client.clone(), name.clone(), id.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            bundle::get(&c, rt, &id).await.map(|row| Read::Bundle(id, row.as_ref().map(Packed::new)))
        });
    }
    for ((name, id), values) in &needs.objects {
        if let Some(row) = listed.remove(&(name.clone(), id.clone())) {
            snapshot.objects.insert((name.clone(), id.clone()), Some(row));
            continue;
        }
        let (c, name, id, values) = (client.clone(), name.clone(), id.clone(), values.clone());
        tasks.spawn(async move {
            let rt = Schema::get().resource(&name).ok_or_else(|| unknown_type(&name))?;
            let op = rt.read.as_ref().ok_or_else(|| unknown_type(&name))?;
            let at = Placeholders { id: Some(&id), tenant: c.tenant() };
            let row = operation::read_object(&c, rt, op, &values, &at).await?;
            Ok(Read::Object((name, id), row.as_ref().map(Packed::new)))
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Read::Settings(doc))) => snapshot.settings = Some(doc),
            Ok(Ok(Read::Rows(name, rows))) => {
                snapshot.listed_ids.entry(name.clone()).or_default().extend(rows.live);
                snapshot.rows.insert(name, rows.by_key);
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
    /// The tenant as the state recorded it, with no call made: what `--refresh=false` plans
    /// against. Nothing the state does not know is in it, so that no unmanaged object and no
    /// change made outside thoth shows.
    pub fn from_state(state: &crate::state::State) -> Snapshot {
        use super::mapping::{deep_merge, set_path, to_wire};
        let schema = Schema::get();
        let mut snapshot = Snapshot::default();
        for (address, entry) in &state.resources {
            let Some(rt) = schema.of(address) else { continue };
            let mut row = Map::new();
            for (name, json) in &entry.attributes {
                let Some(attr) = rt.attribute(name) else { continue };
                let Some(path) = attr.read_json.as_deref().or(attr.json.as_deref()) else { continue };
                set_path(&mut row, path, to_wire(attr, &Value::from_json(json)));
            }
            match rt.kind {
                Kind::SettingsSection => deep_merge(snapshot.settings.get_or_insert_with(Map::new), &row),
                Kind::Singleton => {
                    snapshot.singletons.insert(rt.name.clone(), row);
                }
                Kind::Upsert => {
                    snapshot.rows.entry(rt.name.clone()).or_default().insert(entry.id.clone(), Packed::new(&row));
                }
                Kind::VersionedBundle => {
                    snapshot.bundles.insert(entry.id.clone(), Some(Packed::new(&row)));
                }
                Kind::Object => {
                    snapshot.objects.insert((rt.name.clone(), entry.id.clone()), Some(Packed::new(&row)));
                }
                Kind::Action | Kind::DataSource => {}
            }
        }
        snapshot
    }

    /// The remote object of a resource with the given remote id (the key value for upsert
    /// rows, the version id for bundles); `None` when the control plane does not have it.
    /// Files an object read by another id (an import id) under its remote id as well.
    pub fn file_object(&mut self, rt: &ResourceType, id: &str, row: &Map<String, Json>) {
        if rt.kind == Kind::Object {
            self.objects.insert((rt.name.clone(), id.to_owned()), Some(Packed::new(row)));
        }
    }

    pub fn object(&self, rt: &ResourceType, id: &str) -> Option<Cow<'_, Map<String, Json>>> {
        let packed = match rt.kind {
            Kind::SettingsSection => return self.settings.as_ref().map(Cow::Borrowed),
            Kind::Singleton => return self.singletons.get(&rt.name).map(Cow::Borrowed),
            Kind::Upsert => self.rows.get(&rt.name).and_then(|rows| rows.get(id)),
            Kind::VersionedBundle => self.bundles.get(id).and_then(Option::as_ref),
            Kind::Object => self.objects.get(&(rt.name.clone(), id.to_owned())).and_then(Option::as_ref),
            Kind::Action | Kind::DataSource => None,
        };
        packed.map(|p| Cow::Owned(p.unpack()))
    }
}
