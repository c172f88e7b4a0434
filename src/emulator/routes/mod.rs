//! The GovAPI routes: one submodule per area, assembled into one axum router here.
//!
//! Every path starts with `/{tenant}/thoth`, `/{tenant}/governance` or `/{tenant}/billing`
//! (`govapi.md` §0); any tenant id is accepted and each tenant's data is separate. This module
//! owns the shared state, the router, the JSON fallbacks for unknown routes and wrong methods,
//! and the order of the layers (authentication, then fault injection on the API routes only);
//! each area's submodule owns its handlers and the wire rendering of its stored rows.
//! Handlers validate a request completely before they mutate anything, and never panic on
//! request input.
//!
//! Areas: `settings` (settings document, webhook test), `mdm`, `browser`, `bundles` (policy
//! bundles), `fleets`, `endpoints`, `api_keys`, `policy_sync`, `approvals`, `exceptions`
//! (policy exceptions, reviews, change artifacts), `packs`, `mcp`, `evidence` (backfills,
//! evidence chain, SLOs), `billing`, `reports` (feed, tools, reports, forensics). `derived`
//! computes the views several areas share, and `seed` serves the emulator-only routes under
//! `/{tenant}/_emulator/`, which fault injection never touches.
//!
//! Every handler has one shape ([`Tenant`]): extractors read and validate the request, one
//! `read` or `mutate` of the tenant's data renders the answer, and the handler returns it as an
//! [`Answer`] or a [`StatusAnswer`].
//!
//! To add an area: write a submodule with `pub(super) fn routes() -> Router<AppState>`, add
//! its data to `store::model::TenantData`, and merge it in [`router`].

mod api_keys;
mod approvals;
mod billing;
mod browser;
mod bundles;
mod derived;
mod endpoints;
mod evidence;
mod exceptions;
mod fleets;
mod mcp;
mod mdm;
mod packs;
mod policy_sync;
mod reports;
mod seed;
mod settings;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::auth;
use super::error::ApiError;
use super::extract::PathParams;
use super::faults::{self, Injector};
use super::store::model::TenantData;
use super::store::Store;

/// What every handler can reach: the store, the accepted API keys and the fault injector.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    api_keys: Vec<String>,
    injector: Injector,
}

impl AppState {
    pub(crate) fn new(store: Store, api_keys: Vec<String>, injector: Injector) -> Self {
        AppState { inner: Arc::new(Inner { store, api_keys, injector }) }
    }

    /// The tenants' data.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The fault injector of this emulator.
    pub(crate) fn injector(&self) -> &Injector {
        &self.inner.injector
    }

    /// Whether `presented` is one of the configured API keys.
    pub(crate) fn accepts_key(&self, presented: &str) -> bool {
        // Every key is compared, so timing does not reveal which key matched.
        self.inner
            .api_keys
            .iter()
            .fold(false, |found, key| auth::constant_time_eq(key.as_bytes(), presented.as_bytes()) | found)
    }
}

/// The path parameters of a route that only names the tenant.
#[derive(Deserialize)]
pub(crate) struct TenantPath {
    pub(crate) tenant: String,
}

/// What a handler answers: a JSON document with 200, or the GovAPI error.
pub(crate) type Answer = Result<Json<Value>, ApiError>;

/// What a handler answers with a status of its own (201 for what it created): the status and a
/// JSON document, or the GovAPI error.
pub(crate) type StatusAnswer = Result<(StatusCode, Json<Value>), ApiError>;

/// The tenant a request addresses, with the emulator's state: what every handler that touches
/// data starts from.
pub(crate) struct Tenant {
    app: AppState,
    id: String,
}

impl Tenant {
    /// The tenant id from the path.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether this emulator answers with the guesses of `--guesses` (values the request did
    /// not hold).
    pub(crate) fn guesses(&self) -> bool {
        self.app.injector().guesses()
    }

    /// Runs `f` on the tenant's data; a tenant never written reads as empty.
    pub(crate) async fn read<R>(&self, f: impl FnOnce(&TenantData) -> R) -> R {
        self.app.store().read(&self.id, f).await
    }

    /// Runs `f` on the tenant's data in one transaction, kept only when it succeeds.
    pub(crate) async fn mutate<R>(
        &self,
        f: impl FnOnce(&mut TenantData) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        self.app.store().mutate(&self.id, f).await
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let PathParams(TenantPath { tenant }) = PathParams::<TenantPath>::from_request_parts(parts, app).await?;
        Ok(Tenant { app: app.clone(), id: tenant })
    }
}

/// The full route pattern of a path under `/{tenant}/thoth`.
pub(crate) fn thoth(path: &str) -> String {
    format!("/{{tenant}}/thoth{path}")
}

/// The full route pattern of a path under `/{tenant}/governance`.
pub(crate) fn governance(path: &str) -> String {
    format!("/{{tenant}}/governance{path}")
}

/// The full route pattern of a path under `/{tenant}/billing`.
pub(crate) fn billing(path: &str) -> String {
    format!("/{{tenant}}/billing{path}")
}

/// Builds the complete application: every area's routes with fault injection around them, the
/// emulator-only routes without it, the JSON fallbacks, authentication in front of all of
/// them, and a last guard that turns any non-JSON error into the GovAPI error shape.
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(settings::routes())
        .merge(mdm::routes())
        .merge(browser::routes())
        .merge(bundles::routes())
        .merge(fleets::routes())
        .merge(endpoints::routes())
        .merge(api_keys::routes())
        .merge(policy_sync::routes())
        .merge(approvals::routes())
        .merge(exceptions::routes())
        .merge(packs::routes())
        .merge(mcp::routes())
        .merge(evidence::routes())
        .merge(billing::routes())
        .merge(reports::routes())
        // A route layer wraps only the routes above, not the fallbacks below.
        .route_layer(middleware::from_fn_with_state(state.clone(), faults::inject));
    Router::new()
        .merge(api)
        .merge(seed::routes())
        // This must come after every route: it replaces the default 405 of routes that exist
        // at the time of the call.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key))
        .layer(middleware::map_response(ensure_json_error))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Rewrites an error response without a JSON body (produced by the framework rather than a
/// handler) into `{"error", "message"}`; handler errors pass through untouched.
async fn ensure_json_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        response
    } else {
        ApiError::from_status(status).into_response()
    }
}
