//! A tenant as a configuration directory: one file per resource type with a block and an
//! `import` block per object, secrets as sensitive variables without a default, policies and
//! JSON documents in files under `policies/` and `browser/` read with `file()`, and a
//! reference wherever one object names another of the export. Planning the directory shows
//! the imports (and the secrets, which the control plane never returns, being written).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use super::hcl::{self, Block};
use crate::model::Value;
use crate::remote::mapping::{get_path, read_row, same};
use crate::remote::Snapshot;
use crate::schema::{AttrMode, Encoding, Kind, Refresh, ResourceType, Schema};
use crate::vecmap::VecMap;

/// What an export writes, by path relative to the directory, and what it left out.
#[derive(Debug, Default)]
pub struct Export {
    pub files: BTreeMap<String, String>,
    /// Objects or types not exported, with the reason.
    pub skipped: Vec<String>,
    /// How many objects were exported.
    pub objects: usize,
    /// The variables the user must give: the secrets.
    pub secrets: Vec<String>,
}

/// The types an export writes, and why the others are not.
pub fn exportable(rt: &ResourceType) -> Result<(), &'static str> {
    match rt.kind {
        Kind::Action => Err("it is a one-shot action, not a lasting object"),
        Kind::DataSource => Err("it is a data source"),
        _ if rt.name == "thoth_pack_assignment" => {
            Err("pack assignments are listed per agent, and agents cannot be listed")
        }
        _ if matches!(
            rt.name.as_str(),
            "thoth_policy_exception_review" | "thoth_policy_change_artifact_apply" | "thoth_approval_decision"
        ) =>
        {
            Err("it is a step of a workflow, not configuration")
        }
        Kind::Object if rt.list.is_none() => Err("the control plane cannot list these objects"),
        _ => Ok(()),
    }
}

/// One object found on the tenant.
struct Found {
    rt: &'static ResourceType,
    label: String,
    /// The id it is imported by.
    import_id: String,
    /// Its remote id, for references from other objects.
    remote_id: String,
    row: Map<String, Json>,
}

/// The objects of one type the snapshot holds, in a stable order.
fn objects_of(rt: &'static ResourceType, snapshot: &Snapshot, tenant: &str) -> Vec<(String, Map<String, Json>)> {
    match rt.kind {
        Kind::SettingsSection | Kind::Singleton => {
            snapshot.object(rt, "").map(|row| vec![(tenant.to_owned(), row.into_owned())]).unwrap_or_default()
        }
        Kind::Upsert => {
            let live = snapshot.listed_ids.get(&rt.name);
            let keys: Vec<String> =
                snapshot.rows.get(&rt.name).map(|rows| rows.keys().cloned().collect()).unwrap_or_default();
            keys.into_iter()
                .filter(|k| live.is_some_and(|l| l.contains(k)))
                .filter_map(|k| snapshot.object(rt, &k).map(|row| (k, row.into_owned())))
                .collect()
        }
        Kind::VersionedBundle => {
            // The current version of each bundle: the newest of its name.
            let mut newest: BTreeMap<String, (f64, String, Map<String, Json>)> = BTreeMap::new();
            for (id, packed) in &snapshot.bundles {
                let Some(row) = packed.as_ref().map(crate::remote::snapshot::Packed::unpack) else { continue };
                let name = row.get("name").and_then(Json::as_str).unwrap_or_default().to_owned();
                let version = row.get("version").and_then(Json::as_f64).unwrap_or(0.0);
                if newest.get(&name).is_none_or(|(v, _, _)| version > *v) {
                    newest.insert(name, (version, id.clone(), row));
                }
            }
            newest.into_values().map(|(_, id, row)| (id, row)).collect()
        }
        Kind::Object => snapshot
            .objects
            .iter()
            .filter(|((t, _), _)| *t == rt.name)
            .filter_map(|((_, id), packed)| packed.as_ref().map(|p| (id.clone(), p.unpack())))
            .collect(),
        Kind::Action | Kind::DataSource => Vec::new(),
    }
}

/// The import id of an object, as the provider takes it.
fn import_id(rt: &ResourceType, remote_id: &str, values: &VecMap<String, Value>) -> String {
    if !rt.import.parts.is_empty() {
        return rt
            .import
            .parts
            .iter()
            .map(|p| values.get(p).and_then(Value::as_str).unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join("/");
    }
    remote_id.to_owned()
}

/// A label for an object: its first identifying value, or its id.
fn label_of(rt: &ResourceType, values: &VecMap<String, Value>, id: &str) -> String {
    let identifying = rt
        .attributes
        .iter()
        .filter(|(_, a)| a.identifying)
        .find_map(|(n, _)| values.get(n).and_then(Value::as_str).filter(|s| !s.is_empty()));
    hcl::label(identifying.unwrap_or(id))
}

/// Exports the objects of `types` the snapshot holds.
pub fn export(snapshot: &Snapshot, tenant: &str, types: &[&'static ResourceType]) -> Export {
    let mut out = Export::default();
    let mut found: Vec<Found> = Vec::new();
    let mut labels: BTreeSet<(String, String)> = BTreeSet::new();
    for rt in types {
        if let Err(why) = exportable(rt) {
            out.skipped.push(format!("`{}`: {why}", rt.name));
            continue;
        }
        for (remote_id, row) in objects_of(rt, snapshot, tenant) {
            let values = read_row(rt, &row);
            let mut label = label_of(rt, &values, &remote_id);
            if rt.kind == Kind::SettingsSection || rt.kind == Kind::Singleton {
                label = "tenant".to_owned();
            }
            let base = label.clone();
            let mut n = 2;
            while !labels.insert((rt.name.clone(), label.clone())) {
                label = format!("{base}_{n}");
                n += 1;
            }
            let import_id = import_id(rt, &remote_id, &values);
            found.push(Found { rt, label, import_id, remote_id, row });
        }
    }
    // Every object's id and attributes, for references between them.
    let mut by_value: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for f in &found {
        let values = read_row(f.rt, &f.row);
        by_value.insert((f.rt.name.clone(), "id".to_owned(), f.remote_id.clone()), f.label.clone());
        for (name, v) in &values {
            if let Some(s) = v.as_str() {
                by_value.insert((f.rt.name.clone(), name.clone(), s.to_owned()), f.label.clone());
            }
        }
    }
    let mut by_type: BTreeMap<&str, String> = BTreeMap::new();
    let mut variables = String::new();
    for f in &found {
        match block_of(f, &by_value, &mut out.files, &mut variables, &mut out.secrets) {
            Ok(block) => {
                let text = by_type.entry(f.rt.name.as_str()).or_default();
                text.push_str(&block.render());
                text.push('\n');
                let address = format!("{}.{}", f.rt.name, f.label);
                text.push_str(
                    &Block::new("import", &[])
                        .attribute("to", address)
                        .attribute("id", hcl::string(&f.import_id))
                        .render(),
                );
                text.push('\n');
                out.objects += 1;
            }
            Err(why) => out.skipped.push(format!("`{}` `{}`: {why}", f.rt.name, f.import_id)),
        }
    }
    for (type_name, text) in by_type {
        let file = format!("{}.tf", type_name.trim_start_matches("thoth_"));
        out.files.insert(file, text.trim_end().to_owned() + "\n");
    }
    let provider = Block::new("provider", &["thoth"]).attribute("tenant_id", hcl::string(tenant));
    let mut terraform = Block::new("terraform", &[]);
    terraform.blocks.push(
        Block::new("required_providers", &[]).attribute("thoth", "{\n  source = \"atensecurity/thoth\"\n}".to_owned()),
    );
    out.files.insert(
        "main.tf".to_owned(),
        format!(
            "# Exported from tenant `{tenant}` by `thoth export`.\n\n{}\n{}",
            terraform.render(),
            provider.render()
        ),
    );
    if !variables.is_empty() {
        out.files.insert("variables.tf".to_owned(), variables.trim_end().to_owned() + "\n");
    }
    out
}

/// Generated configuration: the text, the files it reads by path, and the secret variables
/// it needs.
pub type Generated = (String, BTreeMap<String, String>, Vec<String>);

/// The blocks of objects about to be imported that the configuration does not declare
/// (`plan --generate-config-out`), each under the name its `import` block gives it; returns
/// the text, the policy and JSON files it reads, and the secret variables it needs.
pub fn generate(
    snapshot: &Snapshot,
    tenant: &str,
    targets: &[(crate::model::Address, String)],
) -> Result<Generated, Vec<String>> {
    let mut text = String::from("# Written by `thoth plan --generate-config-out` for the import blocks without a resource\n# block. Review it, then keep it as part of the configuration.\n\n");
    let mut files = BTreeMap::new();
    let mut variables = String::new();
    let mut secrets = Vec::new();
    let mut problems = Vec::new();
    for (address, id) in targets {
        let Some(rt) = Schema::get().resource(&address.type_name) else { continue };
        let Ok(parsed) = crate::plan::import::parse(rt, id, tenant) else { continue };
        let row = match rt.kind {
            Kind::SettingsSection | Kind::Singleton => snapshot.object(rt, ""),
            _ => snapshot.object(rt, &parsed.remote_id),
        };
        let Some(row) = row.map(std::borrow::Cow::into_owned) else {
            problems.push(format!("`{address}`: tenant `{tenant}` has no {} `{id}`", rt.name));
            continue;
        };
        let found = Found { rt, label: address.name.clone(), import_id: id.clone(), remote_id: parsed.remote_id, row };
        match block_of(&found, &BTreeMap::new(), &mut files, &mut variables, &mut secrets) {
            Ok(block) => {
                text.push_str(&block.render());
                text.push('\n');
            }
            Err(why) => problems.push(format!("`{address}`: {why}")),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    text.push_str(&variables);
    Ok((text.trim_end().to_owned() + "\n", files, secrets))
}

/// The resource block of one object.
fn block_of(
    f: &Found,
    by_value: &BTreeMap<(String, String, String), String>,
    files: &mut BTreeMap<String, String>,
    variables: &mut String,
    secrets: &mut Vec<String>,
) -> Result<Block, String> {
    let rt = f.rt;
    let values = read_row(rt, &f.row);
    let mut block = Block::new("resource", &[rt.name.as_str(), f.label.as_str()]);
    let folder = if rt.name.starts_with("thoth_browser") { "browser" } else { "policies" };
    for (name, attr) in &rt.attributes {
        if !attr.is_settable() || attr.encoding == Encoding::JsonMergeTopLevel {
            continue;
        }
        if attr.sensitive {
            // Never returned: asked for as a variable when the object has one.
            let set = attr.mode == AttrMode::Required
                || attr.json.as_deref().and_then(|p| get_path(&f.row, p)).is_some_and(|v| !v.is_null());
            if set {
                let var = hcl::label(&format!("{}_{}_{name}", rt.name.trim_start_matches("thoth_"), f.label));
                variables.push_str(
                    &Block::new("variable", &[var.as_str()])
                        .attribute(
                            "description",
                            hcl::string(&format!(
                                "`{name}` of `{}.{}`; the control plane never returns it",
                                rt.name, f.label
                            )),
                        )
                        .attribute("type", "string".to_owned())
                        .attribute("sensitive", "true".to_owned())
                        .render(),
                );
                variables.push('\n');
                secrets.push(var.clone());
                block.attributes.push((name.clone(), format!("var.{var}")));
            }
            continue;
        }
        let value = values.get(name).filter(|v| !v.is_null());
        let Some(value) = value.filter(|_| attr.refresh != Refresh::Never) else {
            if attr.mode == AttrMode::Required {
                return Err(format!("the control plane does not report its required `{name}`"));
            }
            continue;
        };
        // What the configuration would get anyway is left out.
        if attr.default.as_ref().is_some_and(|d| same(attr, &Value::from_json(d), value)) {
            continue;
        }
        let reference = attr.refers_to.as_deref().and_then(|target| {
            let (t, a) = target.split_once('.')?;
            let label = by_value.get(&(t.to_owned(), a.to_owned(), value.as_str()?.to_owned()))?;
            Some(format!("{t}.{label}.{a}"))
        });
        let expression = if let Some(r) = reference {
            r
        } else if matches!(attr.encoding, Encoding::JsonObject | Encoding::JsonArrayOfObjects | Encoding::JsonAny) {
            let text = value.as_str().unwrap_or_default();
            let pretty = serde_json::from_str::<Json>(text)
                .ok()
                .and_then(|j| serde_json::to_string_pretty(&j).ok())
                .unwrap_or_else(|| text.to_owned());
            let file = format!("{folder}/{}-{}.json", f.label, name.trim_end_matches("_json"));
            files.insert(file.clone(), pretty + "\n");
            format!("file(\"${{path.module}}/{file}\")")
        } else if let Some(text) = value.as_str().filter(|s| s.contains('\n')) {
            let framework = values.get("framework").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
            let extension = if framework.contains("cedar") {
                "cedar"
            } else if framework.contains("opa") || framework.contains("rego") {
                "rego"
            } else {
                "txt"
            };
            let file = format!("{folder}/{}.{extension}", f.label);
            files.insert(file.clone(), text.to_owned());
            format!("file(\"${{path.module}}/{file}\")")
        } else {
            hcl::value(value)
        };
        block.attributes.push((name.clone(), expression));
    }
    Ok(block)
}

/// The resource types an export covers: all of them, or those named.
pub fn types(names: &[String]) -> Result<Vec<&'static ResourceType>, String> {
    let schema = Schema::get();
    if names.is_empty() {
        return Ok(schema.resource_names().filter_map(|n| schema.resource(n)).collect());
    }
    names
        .iter()
        .map(|n| {
            let full = if n.starts_with("thoth_") { n.clone() } else { format!("thoth_{n}") };
            schema.resource(&full).ok_or_else(|| {
                let known: Vec<&str> = schema.resource_names().collect();
                match crate::diag::did_you_mean(&full, known.iter().copied()) {
                    Some(s) => format!("`{n}` is not a resource type; did you mean `{s}`?"),
                    None => format!("`{n}` is not a resource type"),
                }
            })
        })
        .collect()
}
