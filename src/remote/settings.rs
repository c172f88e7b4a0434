//! The shared tenant settings document (`GET/PUT T/settings`): always read whole, modified,
//! and written back whole, never partially.

use reqwest::Method;
use serde_json::{Map, Value as Json};

use super::{ApiError, Client, Idempotent, Root};
use crate::schema::FollowUp;

/// Reads the whole document. A 404 is read as an empty document: the contract does not say
/// what a fresh tenant answers, and an empty document is what every client then builds on.
pub async fn read(client: &Client) -> Result<Map<String, Json>, ApiError> {
    match client.get("settings", &[]).await {
        Ok(Some(Json::Object(map))) => Ok(map),
        Ok(_) => Ok(Map::new()),
        Err(e) if e.is_not_found() => Ok(Map::new()),
        Err(e) => Err(e),
    }
}

/// Writes the whole document and returns the document as the control plane now has it.
pub async fn write(client: &Client, doc: &Map<String, Json>) -> Result<Map<String, Json>, ApiError> {
    let body = Json::Object(doc.clone());
    match client.call(Method::PUT, Root::Thoth, "settings", &[], Some(&body), Idempotent::Yes).await? {
        Some(Json::Object(map)) => Ok(map),
        _ => Ok(doc.clone()),
    }
}

/// Runs a follow-up call (a webhook test delivery). Returns a warning when the outcome is
/// not the expected one; the write itself has succeeded either way.
pub async fn follow_up(client: &Client, f: &FollowUp) -> Option<String> {
    let body = Json::Object(Map::new());
    match client.call(Method::POST, Root::Thoth, &f.path, &[], Some(&body), Idempotent::No).await {
        Ok(Some(Json::Object(map))) => {
            let got = map.get(&f.expect_field).and_then(Json::as_str).unwrap_or("");
            (got != f.expect_value)
                .then(|| format!("`{}` answered {} = `{got}`, expected `{}`", f.path, f.expect_field, f.expect_value))
        }
        Ok(_) => Some(format!("`{}` answered without a `{}`", f.path, f.expect_field)),
        Err(e) => Some(e.to_string()),
    }
}
