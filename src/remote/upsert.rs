//! Rows keyed by a natural or client-chosen key: listed, upserted by an idempotent POST, and
//! "deleted" by upserting the descriptor's disabling patch.

use reqwest::Method;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::{row_of, ApiError, Client, Idempotent, Root};
use crate::schema::ResourceType;

pub fn path(rt: &ResourceType) -> &str {
    rt.path.as_deref().unwrap_or_default()
}

/// The JSON key of the row key.
pub fn key_field(rt: &ResourceType) -> &str {
    rt.key_attribute().and_then(|a| a.json.as_deref()).unwrap_or("id")
}

/// Every row of the collection, unfiltered, in one call, each still JSON text.
pub async fn list_text(client: &Client, rt: &ResourceType) -> Result<Vec<Box<RawValue>>, ApiError> {
    client.get_list(path(rt), rt.list_key.as_deref().unwrap_or("data")).await
}

/// Every row of the collection, unfiltered, in one call.
pub async fn list(client: &Client, rt: &ResourceType) -> Result<Vec<Map<String, Json>>, ApiError> {
    let items = list_text(client, rt).await?;
    let mut rows = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        rows.push(row_of(item, n).map_err(|m| client.bad_list(path(rt), m))?);
    }
    Ok(rows)
}

/// Upserts one row. The call is idempotent only when the body names the row's key: without
/// it the control plane creates a new row each time, so it must not be repeated blindly.
pub async fn upsert(
    client: &Client,
    rt: &ResourceType,
    body: Map<String, Json>,
) -> Result<Map<String, Json>, ApiError> {
    let idempotent = if body.contains_key(key_field(rt)) { Idempotent::Yes } else { Idempotent::No };
    let sent = Json::Object(body);
    match client.call(Method::POST, Root::Thoth, path(rt), &[], Some(&sent), idempotent).await? {
        Some(Json::Object(map)) => Ok(map),
        _ => match sent {
            Json::Object(map) => Ok(map),
            _ => Ok(Map::new()),
        },
    }
}
