//! The tenant settings document (`GET/PUT T/settings`, `govapi.md` §2) and the webhook test
//! action (`POST T/settings/webhook/test`, §4.9).
//!
//! The document is free-form: unknown keys round-trip unchanged. Five keys are secrets; they
//! are stored apart from the document and never appear in any response.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{thoth, Answer, AppState, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{kind, Body};
use crate::emulator::store::model::Settings;

/// The secret keys of the settings document, as paths of nested object keys.
const SECRET_PATHS: &[&[&str]] = &[
    &["webhook", "secret"],
    &["siem", "webhook", "secret"],
    &["pam", "callback_secret"],
    &["pam", "request_secret"],
    &["pam", "request_auth_token"],
];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/settings"), get(read).put(replace))
        .route(&thoth("/settings/webhook/test"), post(test_webhook))
}

/// `GET T/settings`: the whole document plus `updated_at`.
///
/// A tenant that never wrote its settings gets `{"updated_at": "1970-01-01T00:00:00Z"}`. The
/// contract does not know what a real fresh tenant returns (UNSURE in `govapi.md` §2). An
/// empty document is the choice that invents nothing: every key a configuration sets shows up
/// as an addition in a plan, and no made-up server default (such as a derived
/// `regulatory_regimes`) leaks into the next read-modify-write PUT. The epoch says "never
/// written" and keeps the document identical across restarts.
async fn read(tenant: Tenant) -> Json<Value> {
    Json(tenant.read(|t| render(&t.settings)).await)
}

/// `PUT T/settings`: replaces the document with the body and returns the whole document.
///
/// Secrets follow their own rule, because the contract is UNSURE here (`govapi.md` §2). A key
/// set to a string replaces the stored secret and a key set to `null` clears it. A key that is
/// absent keeps the stored secret: GET never returns secrets, so a client doing
/// read-modify-write (which every client does) would otherwise wipe them on every PUT. This
/// holds even when the whole section (say `webhook`) is absent. `updated_at` in the body is
/// ignored; the server sets it.
async fn replace(tenant: Tenant, body: Body) -> Answer {
    let mut document = body.into_object()?;
    document.shift_remove("updated_at");
    let mut secret_changes = Vec::new();
    for path in SECRET_PATHS {
        let dotted = path.join(".");
        match take_path(&mut document, path) {
            None => {}
            Some(Value::Null) => secret_changes.push((dotted, None)),
            Some(Value::String(secret)) => secret_changes.push((dotted, Some(secret))),
            Some(other) => {
                return Err(ApiError::invalid(format!("`{dotted}` must be a string or null, got {}", kind(&other))))
            }
        }
    }
    let rendered = tenant
        .mutate(move |t| {
            let settings = t.settings.get_mut();
            for (key, secret) in secret_changes {
                match secret {
                    // Never returned nor used: kept only as a digest, so that the data
                    // directory holds no secret.
                    Some(secret) => settings.secrets.insert(key, crate::emulator::store::at_rest(&secret)),
                    None => settings.secrets.remove(&key),
                };
            }
            settings.document = document;
            settings.updated_at = Some(clock::now());
            Ok(render(&t.settings))
        })
        .await?;
    Ok(Json(rendered))
}

/// `POST T/settings/webhook/test`: pretends to deliver a test event to the webhook.
///
/// No network traffic is sent. A webhook that is enabled and has a non-blank `url` is
/// "delivered" with HTTP 200; otherwise the answer is 409 `webhook_not_configured` (the status
/// is UNSURE in `govapi.md` §1.7; 409 says "the tenant's state does not allow this").
async fn test_webhook(tenant: Tenant, _body: Body) -> Answer {
    let configured = tenant
        .read(|t| {
            let webhook = t.settings.document.get("webhook");
            let enabled = webhook.and_then(|w| w.get("enabled")) == Some(&Value::Bool(true));
            let has_url =
                webhook.and_then(|w| w.get("url")).and_then(Value::as_str).is_some_and(|url| !url.trim().is_empty());
            enabled && has_url
        })
        .await;
    if !configured {
        return Err(ApiError::conflict("webhook_not_configured", "webhook is not enabled or the url is not set"));
    }
    Ok(Json(json!({
        "status": "delivered",
        "http_status": 200,
        "tested_at": clock::now(),
    })))
}

/// The settings document as GET and PUT return it: no secrets, `updated_at` last.
fn render(settings: &Settings) -> Value {
    let mut document = settings.document.clone();
    let updated_at = settings.updated_at.as_deref().unwrap_or(clock::NEVER);
    document.insert("updated_at".to_owned(), Value::from(updated_at));
    Value::Object(document)
}

/// Removes the value at a nested key path, if every parent on the way is an object.
fn take_path(document: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut object = document;
    for key in parents {
        object = object.get_mut(*key)?.as_object_mut()?;
    }
    object.shift_remove(*last)
}
