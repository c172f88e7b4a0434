//! MDM providers (`govapi.md` §4.1) and MDM sync jobs (§4.2).
//!
//! Providers are upserted by their `provider` slug and "deleted" by upserting
//! `enabled: false`; such rows stay listed. A sync job is a small state machine that advances
//! one step on every GET: `queued` → `running` → `succeeded` (or `failed` when the provider
//! was disabled by then).

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams};
use crate::emulator::store::model::{MdmProvider, MdmSyncJob, TenantData};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/mdm/providers"), get(list).post(upsert))
        .route(&thoth("/mdm/providers/{provider}/sync"), post(start_sync))
        .route(&thoth("/mdm/sync-jobs/{job_id}"), get(read_job))
}

#[derive(Deserialize)]
struct ProviderPath {
    provider: String,
}

#[derive(Deserialize)]
struct JobPath {
    job_id: String,
}

/// `GET T/mdm/providers`: every row, sorted by `provider`, disabled ones included.
async fn list(tenant: Tenant) -> Json<Value> {
    let rows = tenant.read(|t| t.mdm_providers.values().map(render_provider).collect::<Vec<_>>()).await;
    Json(json!({ "data": rows }))
}

/// `POST T/mdm/providers`: creates or updates the row named by `provider`.
///
/// Two body shapes are accepted (UNSURE how the real server reconciles them, `govapi.md`
/// §4.1): the Terraform one with a `config` object, and the operator's one with top-level
/// `endpoint_url` and `api_key`, which are folded into `config` under the same names. When
/// `config` is absent, the stored one is kept (the operator shape then only overwrites its two
/// keys). `enabled` defaults to `true` and `name` keeps its stored value when absent.
async fn upsert(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let provider = fields.req_str("provider")?;
    let name = fields.opt_str("name")?;
    let enabled = fields.opt_bool("enabled")?.unwrap_or(true);
    let config = fields.opt_object("config")?;
    let mut folded = Map::new();
    for key in ["endpoint_url", "api_key"] {
        if let Some(value) = fields.opt_str(key)? {
            folded.insert(key.to_owned(), Value::String(value));
        }
    }
    let row = tenant
        .mutate(move |t| {
            let now = clock::now();
            let row = t.mdm_providers.get_or_insert_with(&provider.clone(), || MdmProvider {
                provider,
                name: String::new(),
                enabled: true,
                config: Map::new(),
                last_sync_at: None,
                last_sync_status: None,
                last_sync_job_id: None,
                last_error: None,
                synced_endpoints: 0,
                created_at: now.clone(),
                updated_at: now.clone(),
            });
            if let Some(name) = name {
                row.name = name;
            }
            row.enabled = enabled;
            // Credentials are never returned (`govapi.md` §4.1): kept only as digests, so that
            // the data directory holds no secret.
            if let Some(config) = config {
                row.config = crate::emulator::store::config_at_rest(config);
            }
            row.config.extend(crate::emulator::store::config_at_rest(folded));
            row.updated_at = now;
            Ok(render_provider(row))
        })
        .await?;
    Ok(Json(row))
}

/// `POST T/mdm/providers/{provider}/sync`: queues a sync job (202 with the job).
async fn start_sync(
    tenant: Tenant,
    PathParams(ProviderPath { provider }): PathParams<ProviderPath>,
    _body: Body,
) -> StatusAnswer {
    let job_id = clock::new_id("job_")?;
    let job = tenant
        .mutate(move |t| {
            let now = clock::now();
            let row = t
                .mdm_providers
                .get_mut(&provider)
                .ok_or_else(|| ApiError::not_found(format!("MDM provider {provider:?} not found")))?;
            row.last_sync_job_id = Some(job_id.clone());
            row.last_sync_status = Some("queued".to_owned());
            let job = MdmSyncJob {
                job_id: job_id.clone(),
                provider,
                status: "queued".to_owned(),
                synced_endpoints: 0,
                unassigned_count: 0,
                error: None,
                started_at: None,
                completed_at: None,
                created_at: now.clone(),
                updated_at: now,
            };
            let rendered = render_job(&job);
            t.mdm_sync_jobs.insert(job_id, job);
            Ok(rendered)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `GET T/mdm/sync-jobs/{job_id}`: the job, advanced by one step unless it is finished.
async fn read_job(tenant: Tenant, PathParams(JobPath { job_id }): PathParams<JobPath>) -> Answer {
    let job = tenant
        .mutate(move |t| {
            if !t.mdm_sync_jobs.contains_key(&job_id) {
                return Err(ApiError::not_found(format!("MDM sync job {job_id:?} not found")));
            }
            advance_job(t, &job_id);
            t.mdm_sync_jobs
                .get(&job_id)
                .map(render_job)
                .ok_or_else(|| ApiError::not_found(format!("MDM sync job {job_id:?} not found")))
        })
        .await?;
    Ok(Json(job))
}

/// Moves a job one step forward and mirrors its state onto its provider row.
///
/// A running job fails when its provider is disabled or gone by then. A successful job
/// "syncs" the registered endpoints whose `enrollment` names its provider: `synced_endpoints`
/// counts them and `unassigned_count` counts those among them that belong to no fleet.
fn advance_job(t: &mut TenantData, job_id: &str) {
    let now = clock::now();
    let Some(mut job) = t.mdm_sync_jobs.get(job_id).cloned() else {
        return;
    };
    match job.status.as_str() {
        "queued" => {
            "running".clone_into(&mut job.status);
            job.started_at = Some(now.clone());
        }
        "running" => {
            match t.mdm_providers.get(&job.provider).map(|row| row.enabled) {
                Some(true) => {
                    "succeeded".clone_into(&mut job.status);
                    let enrolled: Vec<_> = t
                        .endpoints
                        .values()
                        .filter(|endpoint| endpoint.enrollment.as_deref() == Some(job.provider.as_str()))
                        .collect();
                    job.synced_endpoints = enrolled.len() as u64;
                    job.unassigned_count =
                        enrolled.iter().filter(|endpoint| endpoint.fleet_id.is_none()).count() as u64;
                }
                Some(false) => {
                    "failed".clone_into(&mut job.status);
                    job.error = Some(format!("MDM provider {:?} is disabled", job.provider));
                }
                None => {
                    "failed".clone_into(&mut job.status);
                    job.error = Some(format!("MDM provider {:?} no longer exists", job.provider));
                }
            }
            job.completed_at = Some(now.clone());
        }
        _ => return,
    }
    job.updated_at.clone_from(&now);
    if let Some(row) = t.mdm_providers.get_mut(&job.provider) {
        // Only the latest job of a provider speaks for it.
        if row.last_sync_job_id.as_deref() == Some(job_id) {
            row.last_sync_status = Some(job.status.clone());
            if job.completed_at.is_some() {
                row.last_sync_at = Some(now);
                row.last_error.clone_from(&job.error);
                if job.status == "succeeded" {
                    row.synced_endpoints = job.synced_endpoints;
                }
            }
        }
    }
    t.mdm_sync_jobs.insert(job_id.to_owned(), job);
}

/// A provider row as GovAPI returns it.
///
/// `config` is left out entirely. It holds credentials, `govapi.md` §4.1 says clients never
/// refresh it from the server, and a masked copy would only invite a client to diff against
/// it. `status` is derived: `connected` when enabled, `disabled` otherwise.
fn render_provider(row: &MdmProvider) -> Value {
    json!({
        "provider": row.provider,
        "name": row.name,
        "enabled": row.enabled,
        "status": if row.enabled { "connected" } else { "disabled" },
        "last_sync_at": row.last_sync_at,
        "last_sync_status": row.last_sync_status,
        "last_sync_job_id": row.last_sync_job_id,
        "last_error": row.last_error,
        "synced_endpoints": row.synced_endpoints,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

/// A sync job as GovAPI returns it.
fn render_job(job: &MdmSyncJob) -> Value {
    json!({
        "job_id": job.job_id,
        "provider": job.provider,
        "status": job.status,
        "synced_endpoints": job.synced_endpoints,
        "unassigned_count": job.unassigned_count,
        "error": job.error,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}
