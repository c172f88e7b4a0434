//! Reading data sources: one call with the inputs in the query, path or body, then the
//! computed attributes taken from the answer, its rows (filtered client-side where the
//! descriptor says so), their count or the whole answer.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::mapping::{from_wire, read_path};
use super::operation::{self, Placeholders};
use super::{ApiError, Client};
use crate::model::Value;
use crate::schema::{AttrMode, Location, ResourceType};
use crate::vecmap::VecMap;

/// Answers already read, by type and inputs.
pub(crate) type Reads = BTreeMap<(String, String), VecMap<String, Value>>;

/// Reads the data source with these inputs and returns every attribute's value. The same
/// type with the same inputs is read once per client: reads with side effects (an
/// authorization check, a job that advances) happen once per run.
pub async fn read(
    client: &Client,
    rt: &ResourceType,
    inputs: &VecMap<String, Value>,
) -> Result<VecMap<String, Value>, ApiError> {
    let key = (rt.name.clone(), Value::Map(inputs.clone()).to_json().to_string());
    let cached = client.data_reads.lock().ok().and_then(|reads| reads.get(&key).cloned());
    if let Some(values) = cached {
        return Ok(values);
    }
    let values = read_now(client, rt, inputs).await?;
    if let Ok(mut reads) = client.data_reads.lock() {
        reads.insert(key, values.clone());
    }
    Ok(values)
}

async fn read_now(
    client: &Client,
    rt: &ResourceType,
    inputs: &VecMap<String, Value>,
) -> Result<VecMap<String, Value>, ApiError> {
    let Some(op) = &rt.read else {
        return Err(ApiError::Decode {
            method: "GET".to_owned(),
            path: rt.name.clone(),
            message: "no read operation".to_owned(),
        });
    };
    let at = Placeholders { id: None, tenant: client.tenant() };
    let answer = match operation::call(client, rt, op, inputs, &at).await? {
        Some(Json::Object(map)) => map,
        _ => Map::new(),
    };
    let rows: Vec<Json> = match &rt.rows_key {
        Some(key) => super::list_rows(Some(Json::Object(answer.clone())), key)
            .map_err(|message| ApiError::Decode { method: op.method.clone(), path: op.path.clone(), message })?
            .into_iter()
            .filter(|row| keep(rt, inputs, row))
            .collect(),
        None => Vec::new(),
    };
    let mut out = inputs.clone();
    for (name, attr) in &rt.attributes {
        if attr.mode != AttrMode::Computed {
            continue;
        }
        let Some(path) = attr.read_json.as_deref().or(attr.json.as_deref()) else { continue };
        let json = match path {
            "#count" => Some(Cow::Owned(Json::from(rows.len()))),
            "#rows" => Some(Cow::Owned(Json::Array(rows.clone()))),
            p => read_path(&answer, p),
        };
        if let Some(v) = json.as_ref().and_then(|j| from_wire(attr, j)) {
            out.insert(name.clone(), v);
        } else {
            out.insert(name.clone(), Value::Null);
        }
    }
    Ok(out)
}

/// Whether a row passes the client-side filters that are set: strings compare without
/// regard to case; a `true` boolean filter keeps rows whose field is true.
fn keep(rt: &ResourceType, inputs: &VecMap<String, Value>, row: &Json) -> bool {
    rt.attributes.iter().filter(|(_, a)| a.location == Location::Filter).all(|(name, attr)| {
        let field = attr.json.as_deref().and_then(|k| row.get(k));
        match inputs.get(name) {
            None | Some(Value::Null) => true,
            Some(Value::String(want)) if want.is_empty() => true,
            Some(Value::String(want)) => {
                field.and_then(Json::as_str).is_some_and(|have| have.eq_ignore_ascii_case(want))
            }
            Some(Value::Bool(false)) => true,
            Some(Value::Bool(true)) => field.and_then(Json::as_bool) == Some(true),
            Some(other) => field.is_some_and(|have| Value::from_json(have) == *other),
        }
    })
}
