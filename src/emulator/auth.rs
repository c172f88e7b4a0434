//! Authentication of every request against the emulator's configured API keys.
//!
//! GovAPI clients send exactly one of `X-Api-Key: <key>` (org API keys) or
//! `Authorization: Bearer <token>` (admin tokens), `govapi.md` §1.2. The emulator accepts either
//! when its value is one of the configured keys and answers 401 `unauthorized` otherwise. This
//! module never logs or echoes a presented credential.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::routes::AppState;

/// Middleware: lets the request through only with a valid credential.
pub(crate) async fn require_api_key(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match presented_credential(request.headers()) {
        None => {
            ApiError::unauthorized("missing credentials: send `X-Api-Key: <key>` or `Authorization: Bearer <token>`")
                .into_response()
        }
        Some(credential) if app.accepts_key(credential) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the API key or bearer token is not valid").into_response(),
    }
}

/// The credential a request carries: `X-Api-Key` first, else a bearer token.
fn presented_credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return Some(key.to_str().unwrap_or_default().trim());
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
