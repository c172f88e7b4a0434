//! Fleets (`govapi.md` §4.6): a collection with server-assigned ids and full CRUD.
//!
//! The endpoint counts, drift and compliance figures of a fleet are not stored: they are
//! computed from the endpoints registered with that `fleet_id` each time a fleet is rendered.
//! Fleets are listed in creation order.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams};
use crate::emulator::store::model::{Fleet, TenantData};

/// The fleet statuses the contract lists.
const STATUSES: &[&str] = &["active", "paused", "deploying", "error"];
/// The rollout strategies the contract lists.
const ROLLOUT_STRATEGIES: &[&str] = &["canary", "staged"];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/fleets"), get(list).post(create))
        .route(&thoth("/fleets/{fleet_id}"), get(read).put(update).delete(remove))
}

#[derive(Deserialize)]
struct FleetPath {
    fleet_id: String,
}

/// The writable fields of a fleet, as POST and PUT take them.
///
/// `status` and `rollout_strategy` must be one of the values the contract lists (UNSURE: the
/// Terraform provider does not validate them, the server probably does); `provider` is free
/// text because MDM slugs keep growing (the operator uses `kandji`). `rollout_pct` is 0–100.
struct FleetInput {
    name: String,
    region: Option<String>,
    policy_id: Option<String>,
    policy_name: Option<String>,
    status: Option<String>,
    rollout_strategy: Option<String>,
    rollout_pct: Option<u64>,
    provider: Option<String>,
}

impl FleetInput {
    fn parse(body: Body) -> Result<Self, ApiError> {
        let body = body.into_object()?;
        let fields = Fields(&body);
        let rollout_pct = fields.opt_u64("rollout_pct")?;
        if rollout_pct.is_some_and(|pct| pct > 100) {
            return Err(ApiError::invalid("`rollout_pct` must be between 0 and 100"));
        }
        Ok(FleetInput {
            name: fields.req_str("name")?,
            region: fields.opt_str("region")?,
            policy_id: fields.opt_str("policy_id")?,
            policy_name: fields.opt_str("policy_name")?,
            status: fields.opt_enum("status", STATUSES)?,
            rollout_strategy: fields.opt_enum("rollout_strategy", ROLLOUT_STRATEGIES)?,
            rollout_pct,
            provider: fields.opt_str("provider")?,
        })
    }

    /// Writes every field onto the row: a field left out of the request is cleared.
    fn apply_to(self, row: &mut Fleet) {
        row.name = self.name;
        row.region = self.region;
        row.policy_id = self.policy_id;
        row.policy_name = self.policy_name;
        row.status = self.status;
        row.rollout_strategy = self.rollout_strategy;
        row.rollout_pct = self.rollout_pct;
        row.provider = self.provider;
    }
}

/// `GET T/fleets`: every fleet in creation order. Clients filter on their side.
async fn list(tenant: Tenant) -> Json<Value> {
    let rows = tenant
        .read(|t| {
            let figures = Figures::of(t);
            t.fleets.iter().map(|row| render(&figures, row)).collect::<Vec<_>>()
        })
        .await;
    Json(json!({ "data": rows }))
}

/// `POST T/fleets`: creates a fleet with a new `fleet_id` (201). Names need not be unique
/// (UNSURE in `govapi.md` §4.6); the emulator does not make them so.
async fn create(tenant: Tenant, body: Body) -> StatusAnswer {
    let input = FleetInput::parse(body)?;
    let fleet_id = clock::new_id("flt_")?;
    let row = tenant
        .mutate(move |t| {
            let now = clock::now();
            let mut row = Fleet {
                fleet_code: fleet_code(&fleet_id),
                fleet_id,
                name: String::new(),
                region: None,
                policy_id: None,
                policy_name: None,
                status: None,
                rollout_strategy: None,
                rollout_pct: None,
                provider: None,
                last_deployed_at: None,
                last_deployed_version: None,
                created_at: now.clone(),
                updated_at: now,
            };
            input.apply_to(&mut row);
            let rendered = render(&Figures::of(t), &row);
            t.fleets.push(row);
            Ok(rendered)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// `GET T/fleets/{fleet_id}`.
async fn read(tenant: Tenant, PathParams(FleetPath { fleet_id }): PathParams<FleetPath>) -> Answer {
    tenant
        .read(|t| t.fleets.iter().find(|row| row.fleet_id == fleet_id).map(|row| render(&Figures::of(t), row)))
        .await
        .map(Json)
        .ok_or_else(|| fleet_not_found(&fleet_id))
}

/// `PUT T/fleets/{fleet_id}`: replaces the writable fields and returns the fleet.
///
/// UNSURE whether the real PUT replaces or patches (`govapi.md` §4.6). Clients send `name`
/// plus every configured key, so replacing is what makes removing an attribute from a
/// configuration clear it remotely instead of leaving a difference that never goes away.
async fn update(tenant: Tenant, PathParams(FleetPath { fleet_id }): PathParams<FleetPath>, body: Body) -> Answer {
    let input = FleetInput::parse(body)?;
    let row = tenant
        .mutate(move |t| {
            let index =
                t.fleets.iter().position(|row| row.fleet_id == fleet_id).ok_or_else(|| fleet_not_found(&fleet_id))?;
            let mut row = t.fleets[index].clone();
            input.apply_to(&mut row);
            row.updated_at = clock::now();
            let rendered = render(&Figures::of(t), &row);
            *t.fleets.get_mut(index) = row;
            Ok(rendered)
        })
        .await?;
    Ok(Json(row))
}

/// `DELETE T/fleets/{fleet_id}`: removes the fleet. Endpoints registered with its id keep
/// that `fleet_id`; they simply stop counting towards any fleet.
async fn remove(tenant: Tenant, PathParams(FleetPath { fleet_id }): PathParams<FleetPath>) -> Answer {
    let removed = fleet_id.clone();
    tenant
        .mutate(move |t| {
            let index =
                t.fleets.iter().position(|row| row.fleet_id == removed).ok_or_else(|| fleet_not_found(&removed))?;
            t.fleets.remove(index);
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "deleted": true, "fleet_id": fleet_id })))
}

pub(super) fn fleet_not_found(fleet_id: &str) -> ApiError {
    ApiError::not_found(format!("fleet {fleet_id:?} not found"))
}

/// A short code such as `FLT-3F9A0C`, derived from the id so that it never changes.
fn fleet_code(fleet_id: &str) -> String {
    let digest = clock::sha256_hex(fleet_id.as_bytes());
    format!("FLT-{}", digest[..6].to_ascii_uppercase())
}

/// The figures of every fleet, counted in one pass over the endpoints.
struct Figures<'a>(HashMap<&'a str, Counts>);

/// A fleet's endpoints, those drifted (their `proxy_version` older than the newest one
/// registered in the tenant) and those compliant (their enforcement mode is `enforce`).
#[derive(Clone, Copy, Default)]
struct Counts {
    endpoints: usize,
    drifted: usize,
    compliant: usize,
}

impl<'a> Figures<'a> {
    fn of(t: &'a TenantData) -> Self {
        let latest = super::endpoints::latest_proxy_version(t);
        let mut by_fleet: HashMap<&str, Counts> = HashMap::new();
        for e in t.endpoints.values() {
            let Some(fleet) = e.fleet_id.as_deref() else { continue };
            let counts = by_fleet.entry(fleet).or_default();
            counts.endpoints += 1;
            counts.drifted += usize::from(super::endpoints::outdated(e, latest.as_deref()));
            counts.compliant += usize::from(e.enforcement_mode == "enforce");
        }
        Figures(by_fleet)
    }
}

/// A fleet as GovAPI returns it, with its figures; both percentages are 0 for a fleet without
/// endpoints.
fn render(figures: &Figures, row: &Fleet) -> Value {
    let Counts { endpoints: count, drifted, compliant } =
        figures.0.get(row.fleet_id.as_str()).copied().unwrap_or_default();
    let percent = |part: usize| if count == 0 { 0.0 } else { round2(part as f64 * 100.0 / count as f64) };
    json!({
        "fleet_id": row.fleet_id,
        "name": row.name,
        "fleet_code": row.fleet_code,
        "region": row.region,
        "policy_id": row.policy_id,
        "policy_name": row.policy_name,
        "status": row.status,
        "rollout_strategy": row.rollout_strategy,
        "rollout_pct": row.rollout_pct,
        "drift_pct": percent(drifted),
        "drifted_endpoint_count": drifted,
        "endpoint_count": count,
        "compliance_pct": percent(compliant),
        "provider": row.provider,
        "last_deployed_at": row.last_deployed_at,
        "last_deployed_version": row.last_deployed_version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

/// Rounds to two decimals, so that percentages render as `66.67`, not `66.66666666666667`.
pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
