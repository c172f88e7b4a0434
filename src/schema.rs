//! Resource type descriptors, read from the JSON files in `schemas/`.
//!
//! A descriptor says everything the generic code needs about a type: its lifecycle kind, its
//! paths, its identity, and per attribute the value type, mode, flags, JSON key and allowed
//! values. This module only parses and answers questions about descriptors; it never contains a
//! code path for one particular type.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

// The descriptor files, embedded by `build.rs` so that the binary needs nothing at run time:
// `RESOURCE_FILES` and `DATA_SOURCE_FILES`, each a list of (type name, JSON text).
include!(concat!(env!("OUT_DIR"), "/schemas.rs"));

/// How a type's objects live on the control plane; each kind is one module of `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Keys of the one shared tenant settings document (`GET/PUT T/settings`).
    SettingsSection,
    /// A row keyed by a natural or client-chosen key, written by an idempotent upsert POST and
    /// "deleted" by upserting a disabling patch.
    Upsert,
    /// Append-only versions under a logical name: every change is a new POST with a new id.
    VersionedBundle,
    /// An object driven by its `create`, `read`, `update` and `delete` operations: server-id
    /// CRUD, natural-key registration without delete, create-once records, composite keys.
    /// Without `update`, every change replaces; without `delete`, removal forgets.
    Object,
    /// A singleton written with `create` and read back with `read` (the billing overage cap).
    Singleton,
    /// A one-shot action: `create` runs it (then `poll` waits for it); it runs again when an
    /// input changes and leaves nothing to delete.
    Action,
    /// A read-only data source: `read` with its inputs, computed attributes from the answer.
    DataSource,
}

/// Where an attribute's value goes in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    #[default]
    Body,
    Query,
    /// A `{name}` placeholder of the operation's path.
    Path,
    /// Never sent: used by thoth itself.
    Client,
    /// Never sent: filters the rows of a list answer (data sources).
    Filter,
}

/// The path root of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RootName {
    #[default]
    Thoth,
    Governance,
    Billing,
}

/// What an operation sends as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BodyMode {
    /// The body-located attributes as a JSON object.
    #[default]
    Object,
    /// The literal JSON `null` (parameters travel in the query string).
    Null,
    /// No body at all.
    None,
}

/// One API call of a lifecycle: method, path template (`{id}`, `{tenant}` and `{attribute}`
/// placeholders), root, body, and how to read a list answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub root: RootName,
    /// Safe to repeat: retried on throttling, server errors and timeouts.
    #[serde(default)]
    pub idempotent: bool,
    #[serde(default)]
    pub body: BodyMode,
    /// The answer is a list under this key; the row whose `match_field` equals the id is the
    /// object.
    #[serde(default)]
    pub list_key: Option<String>,
    #[serde(default)]
    pub match_field: Option<String>,
    /// Path placeholders are percent-escaped.
    #[serde(default)]
    pub escape: bool,
    /// Tried when the call answers one of `on` (an older path of the same call).
    #[serde(default)]
    pub fallback: Option<Fallback>,
}

fn default_method() -> String {
    "POST".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub path: String,
    #[serde(default)]
    pub root: RootName,
    pub on: Vec<u16>,
}

/// How an object's id is formed: a response field, an attribute, or a template over
/// attributes (`{agent_id}/{pack_id}`), `{tenant}` and `{now}` (RFC 3339 time of the call).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRule {
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub attribute: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
}

/// How `import` ids of a type read (the Terraform provider's `ImportState` formats). By
/// default an id is the object's remote id as it is (a server-assigned id, an upsert key, a
/// bundle version id); settings sections and singletons take the tenant id, and actions any id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRule {
    /// The id is `tenant/KEY` or `KEY`: its last `/` segment is the key.
    #[serde(default)]
    pub last_segment: bool,
    /// The id is these attributes' values joined by `/` (`agent_id/pack_id`).
    #[serde(default)]
    pub parts: Vec<String>,
    /// The object is read with those attributes, and its remote id taken from what it answers.
    #[serde(default)]
    pub read: bool,
}

/// Waiting for a started job: read `path` until `status_field` is one of `terminal`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    pub path: String,
    #[serde(default)]
    pub root: RootName,
    pub status_field: String,
    pub terminal: Vec<String>,
    pub wait_attribute: String,
    pub interval_attribute: String,
    pub timeout_attribute: String,
    pub default_interval_seconds: u64,
    pub default_timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Bool,
    Int,
    Float,
    List,
    Set,
    Map,
}

impl ValueType {
    pub fn describe(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Bool => "bool",
            ValueType::Int => "number (whole)",
            ValueType::Float => "number",
            ValueType::List => "list of strings",
            ValueType::Set => "set of strings",
            ValueType::Map => "map of strings",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrMode {
    Required,
    Optional,
    /// Optional; when unset the control plane chooses the value.
    OptionalComputed,
    /// Set only by the control plane.
    Computed,
}

/// How a string attribute maps onto its JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Plain,
    /// The string holds JSON text of an object, sent as the object.
    JsonObject,
    /// The string holds JSON text of an array of objects, sent as the array.
    JsonArrayOfObjects,
    /// The string holds JSON text of an object that is deep-merged into the document's top
    /// level; it has no key of its own and is never read back.
    JsonMergeTopLevel,
    /// A computed string holding any JSON value of the answer as text.
    JsonAny,
}

/// Whether the control plane's value is read back when refreshing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Refresh {
    /// The remote value is authoritative.
    #[default]
    Always,
    /// The remote value replaces the recorded one only when it is present and not empty.
    WhenPresent,
    /// The remote value is never read: the control plane redacts or does not return it.
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enum {
    pub values: Vec<String>,
    /// True when the control plane rejects other values (an error); false when the list is
    /// only the documented vocabulary (a warning).
    pub validated: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    #[serde(rename = "type")]
    pub value_type: ValueType,
    pub mode: AttrMode,
    #[serde(default)]
    pub sensitive: bool,
    /// For a value the control plane computes: the inputs it is computed from. It is as
    /// secret as the most secret of them (a browser policy compiled from a document that
    /// used a sensitive variable).
    #[serde(default)]
    pub derived_from: Vec<String>,
    /// Left out of request bodies when its value is blank (empty once trimmed), as the
    /// provider leaves it out; a blank value then matches an absent one.
    #[serde(default)]
    pub omit_empty: bool,
    /// A blank value of this JSON attribute is sent as the empty document of its encoding
    /// (`{}` or `[]`), as the provider's JSON helpers read blank text, rather than refused.
    #[serde(default)]
    pub blank_as_empty: bool,
    /// A blank value is sent as the attribute's `default`, as the provider sends the default
    /// for blank text (an artifact's `apply_channel`).
    #[serde(default)]
    pub blank_as_default: bool,
    /// A change forces the object to be replaced.
    #[serde(default)]
    pub replace: bool,
    /// Dotted JSON path of the value in the request and response; absent for client-only
    /// attributes.
    #[serde(default)]
    pub json: Option<String>,
    /// Where the value is sent; computed attributes ignore it. JSON paths `.` (the whole
    /// answer) and `#count` (the number of rows of a list answer) are read-only.
    #[serde(default, rename = "in")]
    pub location: Location,
    /// For a computed attribute whose answer field differs from `json`.
    #[serde(default)]
    pub read_json: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub refresh: Refresh,
    /// The value the client sends when the attribute is unset.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default, rename = "enum")]
    pub allowed: Option<Enum>,
    /// Spellings the client rewrites before sending (`aws-secrets-manager` → `aws_secrets_manager`).
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Whitespace is trimmed before sending.
    #[serde(default)]
    pub trim: bool,
    /// The value is upper-cased before sending.
    #[serde(default)]
    pub uppercase: bool,
    /// Shown in every plan entry of the resource, changed or not.
    #[serde(default)]
    pub identifying: bool,
    /// When unset, the value is derived from another attribute (`from`) through `map`; when
    /// both are set they must agree.
    #[serde(default)]
    pub derive: Option<Derive>,
    /// How a change of this attribute affects the tenant's security posture.
    #[serde(default)]
    pub security: Option<Security>,
    /// A list attribute whose items each get this value: the `*` of the JSON path is replaced
    /// by every item (`overrides_by_pack.*.trust_floor` for each of `pack_ids`).
    #[serde(default)]
    pub each: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The attribute names another object (`thoth_fleet.id`): an export writes it as a
    /// reference to that object when the export holds it.
    #[serde(default)]
    pub refers_to: Option<String>,
}

/// The security meaning of an attribute's values, for tagging changes as loosening or
/// tightening. Attributes without one are `unknown`, never assumed safe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Security {
    /// Changes do not affect security (names, descriptions, display fields).
    Neutral,
    /// Values ordered from the loosest to the strictest (`allow` < `step_up` < `block`).
    Order(Vec<String>),
    /// The boolean value that is the safe one.
    Safe(bool),
    /// A list or set of what is allowed: adding entries loosens, removing them tightens.
    AllowList,
    /// A list or set of what is blocked or required: adding entries tightens.
    DenyList,
    /// A number that bounds what is allowed from above (a key's lifetime): raising it loosens.
    Ceiling,
    /// A number that bounds what is required from below (a trust floor): raising it tightens.
    Floor,
    /// A JSON document (a browser policy, overrides), judged key by key: the well-known
    /// enterprise browser policies by their meaning, and plainly named keys (`block_*`,
    /// `deny_*`, `require_*`, allow and block lists) by their names.
    Document,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    pub from: String,
    pub map: BTreeMap<String, String>,
}

impl Attribute {
    pub fn is_settable(&self) -> bool {
        self.mode != AttrMode::Computed
    }

    /// Whether `value` is left out of a request body (`omit_empty` and blank).
    pub fn omits(&self, value: &crate::model::Value) -> bool {
        self.omit_empty && value.as_str().is_some_and(|s| s.trim().is_empty())
    }
}

/// An extra call made after a successful write when a client-only flag is true.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    pub when_attribute: String,
    pub path: String,
    /// The response field whose value must equal `expect_value` for success; otherwise the
    /// outcome is only a warning.
    pub expect_field: String,
    pub expect_value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceType {
    #[serde(rename = "type")]
    pub name: String,
    pub kind: Kind,
    pub description: String,
    /// Types whose objects this one exercises (a webhook test delivery uses the webhook
    /// settings): every resource of these types in the configuration is applied first, as if
    /// named in `depends_on`.
    #[serde(default)]
    pub runs_after: Vec<String>,
    /// Collection path under `/{tenant}/thoth/`.
    #[serde(default)]
    pub path: Option<String>,
    /// The array key of the list response.
    #[serde(default)]
    pub list_key: Option<String>,
    /// A query parameter narrowing the list read, filled from an attribute.
    #[serde(default)]
    pub list_filter: Option<ListFilter>,
    /// The attribute that identifies the remote object (its JSON key is the row key).
    #[serde(default)]
    pub key: Option<String>,
    /// The response field holding the object's id when it is not the key (a bundle version id).
    #[serde(default)]
    pub id_field: Option<String>,
    /// True when the control plane generates the key if the client sends none.
    #[serde(default)]
    pub key_server_generated: bool,
    /// Fields upserted to "delete" the object; the row stays on the control plane.
    #[serde(default)]
    pub soft_delete: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub follow_up: Option<FollowUp>,
    #[serde(default)]
    pub create: Option<Operation>,
    #[serde(default)]
    pub read: Option<Operation>,
    #[serde(default)]
    pub update: Option<Operation>,
    #[serde(default)]
    pub delete: Option<Operation>,
    #[serde(default)]
    pub id: Option<IdRule>,
    /// Finding an object after a create that failed ambiguously: a list read whose rows are
    /// matched on the sent values of `lookup_match` (also used for upsert rows whose key the
    /// control plane chooses).
    #[serde(default)]
    pub lookup: Option<Operation>,
    /// Reading many objects at once when refreshing: a list whose rows carry the objects' ids
    /// (its path may name a parent, such as `agents/{agent_id}/packs`).
    #[serde(default)]
    pub list: Option<Operation>,
    #[serde(default)]
    pub lookup_match: Vec<String>,
    #[serde(default)]
    pub poll: Option<Poll>,
    /// For data sources reading a list: the array key of the answer.
    #[serde(default)]
    pub rows_key: Option<String>,
    /// The object protects the tenant (a policy, a broker setting): deleting it loosens and
    /// creating it tightens.
    #[serde(default)]
    pub protective: bool,
    /// Groups of attributes of which exactly one must be set.
    #[serde(default)]
    pub exactly_one_of: Vec<Vec<String>>,
    /// How `import` ids of this type read.
    #[serde(default)]
    pub import: ImportRule,
    /// Body keys every write sends with a fixed value (the scope level of an API key type).
    #[serde(default)]
    pub fixed: serde_json::Map<String, serde_json::Value>,
    pub attributes: BTreeMap<String, Attribute>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    pub param: String,
    pub attribute: String,
}

impl ResourceType {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.get(name)
    }

    pub fn key_attribute(&self) -> Option<&Attribute> {
        self.key.as_deref().and_then(|k| self.attributes.get(k))
    }

    /// Names a user may set, including the meta-arguments every resource accepts.
    pub fn settable_names(&self) -> impl Iterator<Item = &str> {
        self.attributes.iter().filter(|(_, a)| a.is_settable()).map(|(n, _)| n.as_str())
    }

    /// Every attribute name a reference may read: declared ones plus `id` and `tenant_id`.
    pub fn readable(&self, name: &str) -> bool {
        name == "id" || name == "tenant_id" || self.attributes.contains_key(name)
    }
}

/// All resource types and data sources known to this build.
#[derive(Debug)]
pub struct Schema {
    resources: BTreeMap<String, ResourceType>,
    data_sources: BTreeMap<String, ResourceType>,
}

impl Schema {
    /// The embedded schema. The descriptors are checked by a unit test, so a parse failure here
    /// is a build defect and reported as such.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| match Schema::parse(RESOURCE_FILES, DATA_SOURCE_FILES) {
            Ok(schema) => schema,
            Err(message) => panic!("embedded schema is invalid (a build defect): {message}"),
        })
    }

    fn parse(resource_files: &[(&str, &str)], data_source_files: &[(&str, &str)]) -> Result<Schema, String> {
        let read = |dir: &str, files: &[(&str, &str)], data: bool| -> Result<BTreeMap<String, ResourceType>, String> {
            let mut out = BTreeMap::new();
            for (name, text) in files {
                let rt: ResourceType =
                    serde_json::from_str(text).map_err(|e| format!("schemas/{dir}/{name}.json: {e}"))?;
                if rt.name != *name {
                    return Err(format!("schemas/{dir}/{name}.json declares type `{}`", rt.name));
                }
                if data != (rt.kind == Kind::DataSource) {
                    return Err(format!("schemas/{dir}/{name}.json has kind {:?}", rt.kind));
                }
                validate(&rt)?;
                out.insert(rt.name.clone(), rt);
            }
            Ok(out)
        };
        Ok(Schema {
            resources: read("resources", resource_files, false)?,
            data_sources: read("data_sources", data_source_files, true)?,
        })
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceType> {
        self.resources.get(name)
    }

    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    pub fn data_source(&self, name: &str) -> Option<&ResourceType> {
        self.data_sources.get(name)
    }

    pub fn data_source_names(&self) -> impl Iterator<Item = &str> {
        self.data_sources.keys().map(String::as_str)
    }

    /// The descriptor of a resource or data source address.
    pub fn of(&self, address: &crate::model::Address) -> Option<&ResourceType> {
        match address.mode {
            crate::model::Mode::Managed => self.resource(&address.type_name),
            crate::model::Mode::Data => self.data_source(&address.type_name),
        }
    }
}

/// Checks that a descriptor gives its lifecycle kind what it needs.
fn validate(rt: &ResourceType) -> Result<(), String> {
    let need =
        |what: &str, ok: bool| if ok { Ok(()) } else { Err(format!("{}: `{what}` is required for its kind", rt.name)) };
    match rt.kind {
        Kind::SettingsSection => {}
        Kind::Upsert => {
            need("path", rt.path.is_some())?;
            need("list_key", rt.list_key.is_some())?;
            need("key", rt.key_attribute().is_some_and(|a| a.json.is_some()))?;
            need("soft_delete", rt.soft_delete.is_some())?;
        }
        Kind::VersionedBundle => {
            need("path", rt.path.is_some())?;
            need("key", rt.key_attribute().is_some_and(|a| a.json.is_some()))?;
        }
        Kind::Object => {
            need("create", rt.create.is_some())?;
            need("read", rt.read.is_some())?;
            need("id", rt.id.is_some())?;
        }
        Kind::Singleton | Kind::DataSource => need("read", rt.read.is_some())?,
        Kind::Action => {
            need("create", rt.create.is_some())?;
            need("id", rt.id.is_some())?;
        }
    }
    for (name, attr) in &rt.attributes {
        if !matches!(attr.encoding, Encoding::Plain) && attr.value_type != ValueType::String {
            return Err(format!("{}.{name}: only strings can carry JSON text", rt.name));
        }
        if rt.kind != Kind::DataSource && (name == "id" || name == "tenant_id") {
            return Err(format!("{}.{name}: `id` and `tenant_id` are implicit", rt.name));
        }
    }
    let placeholders = [&rt.create, &rt.read, &rt.update, &rt.delete]
        .into_iter()
        .flatten()
        .map(|op| op.path.as_str())
        .chain(rt.poll.as_ref().map(|p| p.path.as_str()))
        .chain(rt.id.as_ref().and_then(|i| i.template.as_deref()));
    for path in placeholders {
        for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
            need(
                &format!("placeholder `{{{name}}}` names an attribute"),
                matches!(name, "id" | "tenant" | "now" | "unix") || rt.attributes.contains_key(name),
            )?;
        }
    }
    if let Some(f) = &rt.list_filter {
        need("list_filter.attribute", rt.attributes.contains_key(&f.attribute))?;
    }
    for group in &rt.exactly_one_of {
        need("exactly_one_of", group.iter().all(|a| rt.attributes.contains_key(a)))?;
    }
    for attr in rt.attributes.values() {
        if let Some(d) = &attr.derive {
            need("derive.from", rt.attributes.contains_key(&d.from))?;
        }
        if let Some(each) = &attr.each {
            need(
                "`each` names a list attribute and the JSON path has a `*`",
                rt.attribute(each).is_some_and(|a| a.value_type == ValueType::List)
                    && attr.json.as_deref().is_some_and(|j| j.contains('*')),
            )?;
        }
    }
    if let Some(f) = &rt.follow_up {
        need("follow_up.when_attribute", rt.attributes.contains_key(&f.when_attribute))?;
    }
    if let Some(p) = &rt.poll {
        for a in [&p.wait_attribute, &p.interval_attribute, &p.timeout_attribute] {
            need("poll attributes", rt.attributes.contains_key(a))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_descriptor_parses_and_validates() {
        let schema = Schema::parse(RESOURCE_FILES, DATA_SOURCE_FILES).expect("descriptors");
        assert_eq!(schema.resource_names().count(), RESOURCE_FILES.len());
        assert_eq!(schema.data_source_names().count(), DATA_SOURCE_FILES.len());
    }
}
