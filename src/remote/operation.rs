//! Calls described by a descriptor's operations: path templates, where each attribute goes
//! (body, query, path), body modes, fallback paths, and reading one object out of a list.
//!
//! The object, singleton, action and data source lifecycles are built from these.

use reqwest::Method;
use serde_json::{Map, Value as Json};

use super::mapping::{read_row, set_path, to_wire};
use super::{ApiError, Client, Idempotent, Root};
use crate::model::{format_number, Value};
use crate::schema::{BodyMode, Encoding, Kind, Location, Operation, ResourceType, RootName};
use crate::vecmap::VecMap;

/// Values a path template may use besides attributes.
#[derive(Debug, Clone, Default)]
pub struct Placeholders<'a> {
    pub id: Option<&'a str>,
    pub tenant: &'a str,
}

fn root(name: RootName) -> Root {
    match name {
        RootName::Thoth => Root::Thoth,
        RootName::Governance => Root::Governance,
        RootName::Billing => Root::Billing,
    }
}

/// The text a value takes in a path or a query string.
pub fn plain_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(format_number(*n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Fills `{id}`, `{tenant}`, `{now}`, `{unix}` and `{attribute}` placeholders.
pub fn render_template(
    template: &str,
    values: &VecMap<String, Value>,
    at: &Placeholders<'_>,
    escape: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("unterminated placeholder in `{template}`"));
        };
        let name = &rest[start + 1..start + len];
        let text = match name {
            "id" => at.id.map(str::to_owned).ok_or("the object has no id yet")?,
            "tenant" => at.tenant.to_owned(),
            "now" => crate::state::now_rfc3339(),
            "unix" => crate::state::now_unix().to_string(),
            attr => values
                .get(attr)
                .and_then(plain_text)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("`{attr}` is needed for the path `{template}`"))?,
        };
        if escape {
            out.push_str(&percent_escape(&text));
        } else {
            out.push_str(&text);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes a path segment as Go's `url.PathEscape` does.
fn percent_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request parts built from attribute values: the JSON body and the query string.
pub fn request_parts(rt: &ResourceType, values: &VecMap<String, Value>) -> (Map<String, Json>, Vec<(String, String)>) {
    let mut body = Map::new();
    let mut query = Vec::new();
    // JSON objects first, then plain values, so that a dotted key inside an object attribute
    // (`overrides.behavioral_controls.trust_floor`) lands inside the object, not under it.
    let mut ordered: Vec<(&String, &Value)> = values.iter().collect();
    ordered.sort_by_key(|(name, _)| rt.attribute(name).is_none_or(|a| a.encoding == Encoding::Plain));
    for (name, value) in ordered {
        let Some(attr) = rt.attribute(name) else { continue };
        let Some(key) = attr.json.as_deref() else { continue };
        if attr.omits(value) {
            continue;
        }
        match attr.location {
            Location::Body if attr.each.is_some() => {
                let items = match attr.each.as_ref().and_then(|each| values.get(each)) {
                    Some(Value::List(items)) => items.as_slice(),
                    _ => &[],
                };
                for item in items {
                    if let Some(text) = plain_text(item) {
                        set_path(&mut body, &key.replace('*', &text), to_wire(attr, value));
                    }
                }
            }
            Location::Body => match (attr.encoding, to_wire(attr, value)) {
                (Encoding::JsonObject, Json::Object(obj)) => {
                    let mut target = Map::new();
                    if let Some(Json::Object(existing)) = super::mapping::get_path(&body, key).cloned() {
                        target = existing;
                    }
                    super::mapping::deep_merge(&mut target, &obj);
                    set_path(&mut body, key, Json::Object(target));
                }
                (_, wire) => set_path(&mut body, key, wire),
            },
            Location::Query => {
                if let Some(text) = plain_text(value).filter(|t| !t.is_empty()) {
                    query.push((key.to_owned(), text));
                }
            }
            Location::Path | Location::Client | Location::Filter => {}
        }
    }
    for (key, value) in &rt.fixed {
        body.insert(key.clone(), value.clone());
    }
    (body, query)
}

/// Sends one operation with these values; tries the fallback path on the statuses it names.
pub async fn call(
    client: &Client,
    rt: &ResourceType,
    op: &Operation,
    values: &VecMap<String, Value>,
    at: &Placeholders<'_>,
) -> Result<Option<Json>, ApiError> {
    let (body_map, query) = request_parts(rt, values);
    let body = match op.body {
        BodyMode::Object => Some(Json::Object(body_map)),
        BodyMode::Null => Some(Json::Null),
        BodyMode::None => None,
    };
    let method = Method::from_bytes(op.method.as_bytes()).unwrap_or(Method::POST);
    let body = if method == Method::GET || method == Method::DELETE { None } else { body };
    let query_ref: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A PUT replaces what it names: repeating it changes nothing (HTTP semantics), whatever
    // the descriptor says of the call.
    let idempotent = if op.idempotent || method == Method::PUT {
        Idempotent::Yes
    } else if rt.kind == crate::schema::Kind::Action {
        Idempotent::Repeatable
    } else {
        Idempotent::No
    };
    let path = render_template(&op.path, values, at, op.escape).map_err(|message| ApiError::Decode {
        method: op.method.clone(),
        path: op.path.clone(),
        message,
    })?;
    let first = client.call(method.clone(), root(op.root), &path, &query_ref, body.as_ref(), idempotent).await;
    match (&first, &op.fallback) {
        (Err(ApiError::Status { status, .. }), Some(fallback)) if fallback.on.contains(status) => {
            let path = render_template(&fallback.path, values, at, op.escape).map_err(|message| ApiError::Decode {
                method: op.method.clone(),
                path: fallback.path.clone(),
                message,
            })?;
            client.call(method, root(fallback.root), &path, &query_ref, body.as_ref(), idempotent).await
        }
        _ => first,
    }
}

/// Reads one object: the answer itself, or the row of a list answer whose `match_field`
/// equals the id. `None` when the control plane does not have it (404 or no such row).
pub async fn read_object(
    client: &Client,
    rt: &ResourceType,
    op: &Operation,
    values: &VecMap<String, Value>,
    at: &Placeholders<'_>,
) -> Result<Option<Map<String, Json>>, ApiError> {
    let answer = match call(client, rt, op, values, at).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    match (&op.list_key, &op.match_field) {
        (Some(key), Some(field)) => {
            let rows = super::list_rows(answer, key).map_err(|message| ApiError::Decode {
                method: op.method.clone(),
                path: op.path.clone(),
                message,
            })?;
            // The row is matched on the attribute sent under that field when there is one
            // (the pack of an agent's assignment), else on the id.
            let wanted = rt
                .attributes
                .iter()
                .find(|(name, a)| a.json.as_deref() == Some(field) || *name == field)
                .and_then(|(name, _)| values.get(name))
                .and_then(plain_text);
            let wanted = wanted.as_deref().or(at.id);
            Ok(rows.into_iter().find_map(|row| match row {
                Json::Object(map) if map.get(field).and_then(Json::as_str) == wanted => Some(map),
                _ => None,
            }))
        }
        _ => Ok(match answer {
            Some(Json::Object(map)) => Some(map),
            _ => None,
        }),
    }
}

/// The remote id of a row of any kind: an upsert row's key, a bundle version's id, or an
/// object's id by its descriptor's rule; `values` are what it was written with (or recorded).
pub fn remote_id(
    rt: &ResourceType,
    row: &Map<String, Json>,
    values: &VecMap<String, Value>,
    tenant: &str,
) -> Option<String> {
    let field = |name: &str| row.get(name).and_then(Json::as_str).map(str::to_owned);
    match rt.kind {
        Kind::Upsert => field(super::upsert::key_field(rt))
            .or_else(|| rt.key.as_ref().and_then(|k| values.get(k)).and_then(|v| v.as_str().map(str::to_owned))),
        Kind::VersionedBundle => field(rt.id_field.as_deref().unwrap_or("id")),
        _ => object_id(rt, row, values, tenant).ok(),
    }
}

/// The remote id of an object written with `values` whose answer is `row`: from the answer,
/// an attribute or a template, as the descriptor's id rule says.
pub fn object_id(
    rt: &ResourceType,
    row: &Map<String, Json>,
    values: &VecMap<String, Value>,
    tenant: &str,
) -> Result<String, String> {
    // What the answer says wins over what was sent: a list row names its own object.
    let mut all = values.clone();
    all.extend(read_row(rt, row));
    match (&rt.id, rt.kind) {
        (_, Kind::Singleton) => Ok(tenant.to_owned()),
        (Some(rule), _) => {
            if let Some(field) = &rule.response {
                row.get(field)
                    .and_then(Json::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("the answer has no `{field}`"))
            } else if let Some(attr) = &rule.attribute {
                all.get(attr).and_then(plain_text).ok_or_else(|| format!("`{attr}` has no value"))
            } else if let Some(template) = &rule.template {
                render_template(template, &all, &Placeholders { id: None, tenant }, false)
            } else {
                Err("the descriptor's id rule is empty".to_owned())
            }
        }
        (None, _) => Err("the descriptor has no id rule".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_escape_placeholders() {
        let values: VecMap<String, Value> =
            [("vendor_id".to_owned(), Value::String("vendor with spaces".to_owned()))].into_iter().collect();
        let at = Placeholders { id: Some("v/1"), tenant: "acme" };
        assert_eq!(
            render_template("mcp/vendors/{vendor_id}", &values, &at, true).as_deref(),
            Ok("mcp/vendors/vendor%20with%20spaces")
        );
        assert_eq!(render_template("x/{id}/{tenant}", &values, &at, false).as_deref(), Ok("x/v/1/acme"));
        assert!(render_template("agents/{agent_id}", &values, &at, false).is_err());
    }
}
