//! Moving attribute values in and out of JSON documents, as the descriptors say: dotted JSON
//! paths, JSON text attributes, integer numbers and canonical forms for comparison.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::model::{number_to_json, Value};
use crate::schema::{Attribute, Encoding, ResourceType, ValueType};
use crate::vecmap::VecMap;

/// The JSON sent for an attribute value.
pub fn to_wire(attr: &Attribute, value: &Value) -> Json {
    match (attr.encoding, value) {
        (Encoding::Plain, v) => v.to_json(),
        (_, Value::String(text)) => serde_json::from_str(text).unwrap_or(Json::Null),
        (_, v) => v.to_json(),
    }
}

/// The attribute value read from a JSON value, or `None` when the JSON has nothing usable.
pub fn from_wire(attr: &Attribute, json: &Json) -> Option<Value> {
    if json.is_null() {
        return None;
    }
    Some(match (attr.encoding, attr.value_type) {
        (Encoding::Plain, ValueType::String) => match json {
            Json::String(s) => Value::String(s.clone()),
            Json::Number(n) => Value::String(n.to_string()),
            Json::Bool(b) => Value::String(b.to_string()),
            other => Value::String(other.to_string()),
        },
        (Encoding::Plain, ValueType::Bool) => Value::Bool(json.as_bool()?),
        (Encoding::Plain, ValueType::Int | ValueType::Float) => Value::Number(json.as_f64()?),
        (Encoding::Plain, ValueType::List) => Value::List(json.as_array()?.iter().map(scalar_string).collect()),
        (Encoding::Plain, ValueType::Set) => {
            let mut items: Vec<Value> = json.as_array()?.iter().map(scalar_string).collect();
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            items.dedup();
            Value::List(items)
        }
        (Encoding::Plain, ValueType::Map) => {
            Value::Map(json.as_object()?.iter().map(|(k, v)| (k.clone(), scalar_string(v))).collect())
        }
        // JSON text attributes read back as compact JSON with sorted keys.
        (_, _) => Value::String(canonical_text(json)),
    })
}

fn scalar_string(json: &Json) -> Value {
    match json {
        Json::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// The same JSON with object keys sorted at every level.
pub fn canonical(json: &Json) -> Json {
    match json {
        Json::Object(map) => {
            let sorted: BTreeMap<&String, Json> = map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Json::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        Json::Number(n) => n.as_f64().map_or_else(|| json.clone(), number_to_json),
        other => other.clone(),
    }
}

/// `canonical(json).to_string()`, written directly: compact JSON with object keys sorted at
/// every level and numbers normalised, without building the sorted copy.
pub fn canonical_text(json: &Json) -> String {
    let mut out = String::new();
    write_canonical(json, &mut out);
    out
}

fn write_canonical(json: &Json, out: &mut String) {
    match json {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Json::Number(n) => match n.as_f64() {
            Some(f) => out.push_str(&number_to_json(f).to_string()),
            None => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// Whether two JSON documents are equal once canonical: keys in any order, numbers by value.
fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_json(v, w)),
        (Json::Number(x), Json::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(f), Some(g)) => number_to_json(f) == number_to_json(g),
            _ => x == y,
        },
        _ => a == b,
    }
}

/// Whether two values of an attribute mean the same thing: JSON text is compared as JSON,
/// sets without order, numbers by value.
pub fn same(attr: &Attribute, a: &Value, b: &Value) -> bool {
    match (attr.encoding, a, b) {
        // Trimmed attributes are sent trimmed: the control plane's surrounding space is noise.
        (Encoding::Plain, Value::String(x), Value::String(y)) if attr.trim => x.trim() == y.trim(),
        (Encoding::Plain, _, _) => a == b,
        // Equal text is the same document, which is the common case of a plan without changes.
        (_, Value::String(x), Value::String(y)) if x == y => true,
        (_, Value::String(x), Value::String(y)) => {
            match (serde_json::from_str::<Json>(x), serde_json::from_str::<Json>(y)) {
                (Ok(jx), Ok(jy)) => same_json(&jx, &jy),
                _ => false,
            }
        }
        _ => a == b,
    }
}

pub fn get_path<'a>(doc: &'a Map<String, Json>, dotted: &str) -> Option<&'a Json> {
    let mut parts = dotted.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// The JSON value a read path names in an answer. Besides dotted paths: `.` is the whole
/// answer, `#now` the time of the call (for client-side timestamps of actions), `#len:PATH`
/// the number of items at `PATH`, and `A|B` the first of the alternatives that is present.
/// A value of the row is borrowed, not copied: most paths name one.
pub fn read_path<'a>(row: &'a Map<String, Json>, path: &str) -> Option<Cow<'a, Json>> {
    path.split('|').find_map(|alternative| match alternative {
        "." => Some(Cow::Owned(Json::Object(row.clone()))),
        "#now" => Some(Cow::Owned(Json::String(crate::state::now_rfc3339()))),
        p => match p.strip_prefix("#len:") {
            Some(inner) => match get_path(row, inner)? {
                Json::Array(items) => Some(Cow::Owned(Json::from(items.len()))),
                Json::Object(map) => Some(Cow::Owned(Json::from(map.len()))),
                _ => None,
            },
            None => get_path(row, p).filter(|j| !j.is_null()).map(Cow::Borrowed),
        },
    })
}

/// Sets a dotted path, creating (or replacing non-object) intermediate objects.
pub fn set_path(doc: &mut Map<String, Json>, dotted: &str, value: Json) {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut current = doc;
    for part in &parts[..parts.len() - 1] {
        let entry = current.entry((*part).to_owned()).or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(next) = entry else { return };
        current = next;
    }
    current.insert(parts[parts.len() - 1].to_owned(), value);
}

/// Deep-merges `patch` into `doc`: objects merge key by key, anything else overwrites.
pub fn deep_merge(doc: &mut Map<String, Json>, patch: &Map<String, Json>) {
    for (k, v) in patch {
        match (doc.get_mut(k), v) {
            (Some(Json::Object(existing)), Json::Object(p)) => deep_merge(existing, p),
            _ => {
                doc.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Why a row from the control plane cannot be read as the descriptor's object: a value of
/// the wrong type where the descriptor expects a bool, a number, a list or a map.
pub fn check_row(rt: &ResourceType, row: &Map<String, Json>) -> Result<(), String> {
    for (name, attr) in &rt.attributes {
        let Some(path) = attr.read_json.as_deref().or(attr.json.as_deref()) else { continue };
        let Some(json) = read_path(row, path) else { continue };
        if attr.encoding == Encoding::Plain && !json.is_null() && from_wire(attr, &json).is_none() {
            let found = match *json {
                Json::Bool(_) => "a bool",
                Json::Number(_) => "a number",
                Json::String(_) => "a string",
                Json::Array(_) => "a list",
                _ => "an object",
            };
            let wanted = match attr.value_type {
                ValueType::Bool => "a bool",
                ValueType::Int | ValueType::Float => "a number",
                ValueType::List | ValueType::Set => "a list",
                _ => "an object",
            };
            return Err(format!("has {found} in `{path}`, where `{name}` needs {wanted}"));
        }
    }
    Ok(())
}

/// The JSON object attribute `name` as it is sent: its document with the values of the plain
/// attributes whose paths lie inside it set there (they win, as the provider merges them).
/// `None` when no such attribute has a value, or the document is not a JSON object.
pub fn merged_document(rt: &ResourceType, values: &VecMap<String, Value>, name: &str) -> Option<Value> {
    let attr = rt.attribute(name)?;
    let prefix = attr.json.as_deref().filter(|_| attr.encoding == Encoding::JsonObject)?;
    let inside: Vec<(&str, &Value)> = rt
        .attributes
        .iter()
        .filter(|(_, a)| a.encoding == Encoding::Plain)
        .filter_map(|(n, a)| Some((a.json.as_deref()?.strip_prefix(prefix)?.strip_prefix('.')?, values.get(n)?)))
        .collect();
    if inside.is_empty() {
        return None;
    }
    let Value::String(text) = values.get(name)? else { return None };
    let Json::Object(mut doc) = serde_json::from_str::<Json>(text).ok()? else { return None };
    for (path, value) in inside {
        set_path(&mut doc, path, value.to_json());
    }
    Some(Value::String(canonical_text(&Json::Object(doc))))
}

/// Every attribute value a JSON row holds, by the descriptor's paths.
pub fn read_row(rt: &ResourceType, row: &Map<String, Json>) -> VecMap<String, Value> {
    rt.attributes.iter().filter_map(|(name, attr)| Some((name.clone(), read_attribute(attr, row)?))).collect()
}

/// One attribute's value in a row, by its read path.
pub fn read_attribute(attr: &Attribute, row: &Map<String, Json>) -> Option<Value> {
    let path = attr.read_json.as_deref().or(attr.json.as_deref())?;
    from_wire(attr, &*read_path(row, path)?)
}

/// Writes the given attribute values into a JSON body by the descriptor's paths; attributes
/// without a JSON path (client-only ones) are skipped.
pub fn write_values(rt: &ResourceType, values: &VecMap<String, Value>, body: &mut Map<String, Json>) {
    for (name, value) in values {
        let Some(attr) = rt.attribute(name) else { continue };
        if attr.omits(value) {
            continue;
        }
        if let Some(path) = attr.json.as_deref() {
            set_path(body, path, to_wire(attr, value));
        }
    }
    // Merges go last, after the typed keys, as the contract says.
    for (name, value) in values {
        if let (Some(attr), Value::String(text)) = (rt.attribute(name), value) {
            if attr.encoding == Encoding::JsonMergeTopLevel {
                if let Ok(Json::Object(patch)) = serde_json::from_str::<Json>(text) {
                    deep_merge(body, &patch);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_create_and_read_nested_objects() {
        let mut doc = Map::new();
        set_path(&mut doc, "shadow_policy.high", json!("block"));
        set_path(&mut doc, "shadow_policy.low", json!("allow"));
        assert_eq!(Json::Object(doc.clone()), json!({"shadow_policy": {"high": "block", "low": "allow"}}));
        assert_eq!(get_path(&doc, "shadow_policy.low"), Some(&json!("allow")));
        assert_eq!(get_path(&doc, "shadow_policy.none"), None);
    }

    #[test]
    fn read_paths_count_and_fall_back() {
        let row = json!({"a": {"b": [1, 2, 3]}, "n": null, "k": 7}).as_object().cloned().unwrap_or_default();
        assert_eq!(read_path(&row, "#len:a.b").map(Cow::into_owned), Some(json!(3)));
        assert_eq!(read_path(&row, "n|#len:a.b").map(Cow::into_owned), Some(json!(3)));
        assert_eq!(read_path(&row, "k|#len:a.b").map(Cow::into_owned), Some(json!(7)));
        assert!(read_path(&row, "missing").is_none());
        assert!(read_path(&row, "#now").is_some_and(|j| j.is_string()));
    }

    #[test]
    fn deep_merge_merges_objects_and_overwrites_the_rest() {
        let mut doc = json!({"a": {"x": 1, "y": 2}, "b": [1]}).as_object().cloned().unwrap_or_default();
        let patch = json!({"a": {"y": 3}, "b": [2], "c": true}).as_object().cloned().unwrap_or_default();
        deep_merge(&mut doc, &patch);
        assert_eq!(Json::Object(doc), json!({"a": {"x": 1, "y": 3}, "b": [2], "c": true}));
    }

    #[test]
    fn canonical_sorts_keys_and_normalises_numbers() {
        assert_eq!(canonical(&json!({"b": 1.0, "a": {"d": 2, "c": 3}})).to_string(), r#"{"a":{"c":3,"d":2},"b":1}"#);
    }

    #[test]
    fn canonical_text_is_the_canonical_document_and_same_agrees_with_it() {
        let docs = [
            json!({"b": 1.0, "a": {"d": 2, "c": [3, 1.5e3, -0.0]}, "é\"\n": "x\u{1}y", "n": null, "t": true}),
            json!([{"z": 1}, {"y": [[]]}, "s", 12345678901234567890_u64, -7]),
            json!({"a": 1}),
            json!({"a": 1.0}),
            json!({"a": 2}),
            json!({"b": 1, "a": 1}),
            json!({"a": 1, "b": 1}),
            json!(["x", "y"]),
            json!(["y", "x"]),
        ];
        for doc in &docs {
            assert_eq!(canonical_text(doc), canonical(doc).to_string());
        }
        let attr: Attribute =
            serde_json::from_value(json!({"type": "string", "mode": "optional", "encoding": "json_any"})).unwrap();
        for x in &docs {
            for y in &docs {
                let text = |d: &Json| Value::String(d.to_string());
                assert_eq!(same(&attr, &text(x), &text(y)), canonical(x) == canonical(y), "{x} against {y}");
            }
        }
        assert!(!same(&attr, &Value::String("{".into()), &Value::String("{ ".into())));
    }
}
