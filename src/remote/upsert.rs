//! Rows keyed by a natural or client-chosen key: listed, upserted by an idempotent POST, and
//! "deleted" by upserting the descriptor's disabling patch.

use reqwest::Method;
use serde_json::{Map, Value as Json};

use super::{list_rows, ApiError, Client, Idempotent, Root};
use crate::schema::ResourceType;

pub(super) fn path(rt: &ResourceType) -> &str {
    rt.path.as_deref().unwrap_or_default()
}

/// The JSON key of the row key.
pub fn key_field(rt: &ResourceType) -> &str {
    rt.key_attribute().and_then(|a| a.json.as_deref()).unwrap_or("id")
}

/// Every row of the collection, unfiltered, in one call.
pub async fn list(client: &Client, rt: &ResourceType) -> Result<Vec<Map<String, Json>>, ApiError> {
    let body = client.get(path(rt), &[]).await?;
    let key = rt.list_key.as_deref().unwrap_or("data");
    let rows = list_rows(body, key).map_err(|message| ApiError::Decode {
        method: "GET".to_owned(),
        path: path(rt).to_owned(),
        message,
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r {
            Json::Object(m) => Some(m),
            _ => None,
        })
        .collect())
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
