//! Append-only versioned bundles: every write is a new version with a new id under the same
//! logical name; reads and deletes address one version id.

use reqwest::Method;
use serde_json::{Map, Value as Json};

use super::{ApiError, Client, Idempotent, Root};
use crate::schema::ResourceType;

fn path(rt: &ResourceType) -> &str {
    rt.path.as_deref().unwrap_or_default()
}

/// One version by id; `None` when the control plane no longer has it.
pub async fn get(client: &Client, rt: &ResourceType, id: &str) -> Result<Option<Map<String, Json>>, ApiError> {
    match client.get(&format!("{}/{id}", path(rt)), &[]).await {
        Ok(Some(Json::Object(map))) => Ok(Some(map)),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the next version. Not idempotent: never retried blindly.
pub async fn create(
    client: &Client,
    rt: &ResourceType,
    body: Map<String, Json>,
) -> Result<Map<String, Json>, ApiError> {
    let sent = Json::Object(body);
    match client.call(Method::POST, Root::Thoth, path(rt), &[], Some(&sent), Idempotent::No).await? {
        Some(Json::Object(map)) => Ok(map),
        _ => Err(ApiError::Decode {
            method: "POST".to_owned(),
            path: path(rt).to_owned(),
            message: "the new version was not returned".to_owned(),
        }),
    }
}

/// Deletes one version; an already missing one counts as deleted.
pub async fn delete(client: &Client, rt: &ResourceType, id: &str) -> Result<(), ApiError> {
    match client.call(Method::DELETE, Root::Thoth, &format!("{}/{id}", path(rt)), &[], None, Idempotent::No).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}
