//! Approvals (`govapi.md` §4.14): the paged list and the resolve action.
//!
//! Approvals are created by the runtime on the real control plane, which the emulator does
//! not have; tests and users create them with the emulator-only route
//! `POST /{tenant}/_emulator/approvals` (see the `seed` module). They are listed in creation
//! order.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{thoth, Answer, AppState, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::Approval;

pub(super) const STATUSES: &[&str] = &["pending", "approved", "denied"];

/// The decisions a resolve accepts, and the status each one leads to.
const DECISIONS: &[(&str, &str)] = &[
    ("approve", "approved"),
    ("approved", "approved"),
    ("deny", "denied"),
    ("denied", "denied"),
    ("blocked", "denied"),
];

/// The page size when a client pages without saying how big a page is.
const DEFAULT_PER_PAGE: u64 = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/approvals"), get(list))
        .route(&thoth("/approvals/{approval_id}/resolve"), post(resolve))
}

#[derive(Deserialize)]
struct ApprovalPath {
    approval_id: String,
}

/// `GET T/approvals?status=&page=&per_page=`: `{data, total, page, per_page}`.
///
/// Without `page` and `per_page` every row is returned on page 1 (clients read approvals
/// through this list without paging, `govapi.md` §1.6), and `per_page` then reports the
/// larger of 50 and the row count (UNSURE: the real default page size is not documented).
/// `total` counts the rows that pass the filter.
async fn list(tenant: Tenant, query: QueryParams) -> Answer {
    let status = query.one_of("status", STATUSES)?;
    let page = query.u64_in("page", 1..=u64::from(u32::MAX))?;
    let per_page = query.u64_in("per_page", 1..=1000)?;
    let answer = tenant
        .read(|t| {
            let rows: Vec<Value> = t
                .approvals
                .iter()
                .filter(|row| status.as_deref().is_none_or(|status| row.status == status))
                .map(render)
                .collect();
            let total = rows.len() as u64;
            let (page, per_page, rows) = if page.is_none() && per_page.is_none() {
                (1, total.max(DEFAULT_PER_PAGE), rows)
            } else {
                let page = page.unwrap_or(1);
                let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
                let offset = (page - 1).saturating_mul(per_page);
                (page, per_page, super::derived::page(rows, offset, Some(per_page)))
            };
            json!({ "data": rows, "total": total, "page": page, "per_page": per_page })
        })
        .await;
    Ok(Json(answer))
}

/// `POST T/approvals/{approval_id}/resolve` with `{"decision": ...}` and optionally
/// `resolved_by` (default `api`).
///
/// `approve`/`approved` lead to `approved`, `deny`/`denied`/`blocked` to `denied`. The
/// response echoes `decision` exactly as sent, next to the normalised `status` (UNSURE which
/// form the real server echoes; echoing what was sent keeps a client that re-reads
/// `decision` from seeing a change). Resolving again to the same status answers the same
/// row; resolving a resolved approval the other way is a 409 `approval_already_resolved`.
async fn resolve(
    tenant: Tenant,
    PathParams(ApprovalPath { approval_id }): PathParams<ApprovalPath>,
    body: Body,
) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let decision = fields.req_str("decision")?;
    let status = DECISIONS.iter().find(|(d, _)| *d == decision).map(|(_, s)| *s).ok_or_else(|| {
        ApiError::invalid(format!(
            "`decision` must be one of {}, got {decision:?}",
            DECISIONS.iter().map(|(d, _)| *d).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let resolved_by = fields.opt_non_empty_str("resolved_by")?.unwrap_or_else(|| "api".to_owned());
    let answer = tenant
        .mutate(move |t| {
            let row = t
                .approvals
                .find_mut(|row| row.approval_id == approval_id)
                .ok_or_else(|| ApiError::not_found(format!("approval {approval_id:?} not found")))?;
            if row.status == "pending" {
                let now = clock::now();
                status.clone_into(&mut row.status);
                row.decision = Some(decision.clone());
                row.resolved_by = Some(resolved_by);
                row.resolved_at = Some(now.clone());
                row.updated_at = now;
            } else if row.status != status {
                return Err(ApiError::conflict(
                    "approval_already_resolved",
                    format!("approval {approval_id:?} is already {}", row.status),
                ));
            }
            Ok(json!({
                "approval_id": row.approval_id,
                "decision": decision,
                "status": row.status,
                "resolved_by": row.resolved_by,
                "resolved_at": row.resolved_at,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// An approval as the list shows it.
pub(super) fn render(row: &Approval) -> Value {
    json!({
        "approval_id": row.approval_id,
        "status": row.status,
        "agent_id": row.agent_id,
        "tool_name": row.tool_name,
        "reason": row.reason,
        "requested_by": row.requested_by,
        "violation_id": row.violation_id,
        "decision": row.decision,
        "resolved_by": row.resolved_by,
        "resolved_at": row.resolved_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}
