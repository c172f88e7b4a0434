//! Billing under `/{tenant}/billing` (`govapi.md` §3 and §5): the overage cap and the pricing
//! profile it is read back from, the monthly cost, the credit bank, the estimate, and the
//! invoice, report and artifact lists.
//!
//! Only the overage cap is stored. The price list is fixed data (UNSURE: every figure is made
//! up, plausibly); usage is derived from the tenant (governed identities are the known
//! agents, policy checks the decision events). The emulator issues no invoices and produces
//! no billing reports or artifacts: those lists are empty and a single month is a 404.

use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::derived::{decision_events, known_agents};
use super::{billing, Answer, AppState, Tenant, TenantPath};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::TenantData;

const ACTIVE_TIER: &str = "pilot";
const CATALOG_VERSION: &str = "2026-01";
const BASE_MONTHLY_PLATFORM_FEE_USD: f64 = 2500.0;
const INCLUDED_GOVERNED_IDENTITIES: u64 = 100;
const INCLUDED_POLICY_CHECKS: u64 = 1_000_000;
const GOVERNED_IDENTITY_USD_PER_MONTH: f64 = 15.0;
const POLICY_CHECKS_USD_PER_MILLION: f64 = 40.0;
const LOW_BALANCE_THRESHOLD_CENTS: u64 = 10_000;
const WORM_RETENTION_DAYS: u64 = 365;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&billing("/overage-cap"), put(set_overage_cap))
        .route(&billing("/pricing"), get(pricing))
        .route(&billing("/monthly-cost"), get(monthly_cost))
        .route(&billing("/credit-bank"), get(credit_bank))
        .route(&billing("/estimate"), post(estimate))
        .route(&billing("/invoices"), get(invoices))
        .route(&billing("/reports"), get(reports))
        .route(&billing("/reports/{year}/{month}"), get(report))
        .route(&billing("/artifacts"), get(artifacts))
        .route(&billing("/artifacts/{year}/{month}"), get(artifact))
}

#[derive(Deserialize)]
struct MonthPath {
    tenant: String,
    year: String,
    month: String,
}

/// `PUT B/overage-cap` with `{"overage_cap_usd": <number ≥ 0>}`: stores the cap and returns
/// the pricing profile.
async fn set_overage_cap(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let cap = Fields(&body)
        .opt_f64_in("overage_cap_usd", 0.0, f64::MAX)?
        .ok_or_else(|| ApiError::invalid("`overage_cap_usd` is required"))?;
    let profile = tenant
        .mutate(move |t| {
            let billing = t.billing.get_mut();
            billing.overage_cap_usd = cap;
            billing.overage_cap_updated_at = Some(clock::now());
            Ok(render_pricing(t))
        })
        .await?;
    Ok(Json(profile))
}

/// `GET B/pricing`: the pricing profile; a tenant that never set a cap has a cap of 0.
async fn pricing(tenant: Tenant) -> Json<Value> {
    Json(tenant.read(render_pricing).await)
}

fn render_pricing(t: &TenantData) -> Value {
    json!({
        "active_tier": ACTIVE_TIER,
        "catalog_version": CATALOG_VERSION,
        "metered_pricing": {
            "base_monthly_platform_fee_usd": BASE_MONTHLY_PLATFORM_FEE_USD,
            "included_governed_identities": INCLUDED_GOVERNED_IDENTITIES,
            "included_policy_checks": INCLUDED_POLICY_CHECKS,
            "governed_identity_usd_per_month": GOVERNED_IDENTITY_USD_PER_MONTH,
            "policy_checks_usd_per_million": POLICY_CHECKS_USD_PER_MILLION,
            "prepaid_credit_usd": 0.0,
            "credit_discount_percent": 0.0,
        },
        "pilot_package": {
            "overage_cap_usd": t.billing.overage_cap_usd,
            "updated_at": t.billing.overage_cap_updated_at,
        },
    })
}

/// The month's usage and its cost in cents, overage capped by the pilot package.
struct Usage {
    identities: u64,
    policy_checks: u64,
    identity_overage_cents: u64,
    enforcement_overage_cents: u64,
}

impl Usage {
    fn of(t: &TenantData, identities: Option<u64>, policy_checks: Option<u64>) -> Usage {
        let identities = identities.unwrap_or_else(|| known_agents(t).len() as u64);
        let policy_checks = policy_checks.unwrap_or_else(|| decision_events(t).len() as u64);
        let identity_raw = identities
            .saturating_sub(INCLUDED_GOVERNED_IDENTITIES)
            .saturating_mul(cents(GOVERNED_IDENTITY_USD_PER_MONTH));
        let extra_checks = policy_checks.saturating_sub(INCLUDED_POLICY_CHECKS);
        let enforcement_raw = extra_checks.saturating_mul(cents(POLICY_CHECKS_USD_PER_MILLION)).div_ceil(1_000_000);
        let mut cap = cents(t.billing.overage_cap_usd);
        let identity_overage_cents = identity_raw.min(cap);
        cap -= identity_overage_cents;
        Usage { identities, policy_checks, identity_overage_cents, enforcement_overage_cents: enforcement_raw.min(cap) }
    }
}

/// Dollars to whole cents, rounded; negative and non-finite amounts become 0.
fn cents(usd: f64) -> u64 {
    let cents = (usd * 100.0).round();
    if cents.is_finite() && cents > 0.0 {
        // The float is finite, positive and whole here; `as` saturates at `u64::MAX`.
        cents as u64
    } else {
        0
    }
}

fn usd(cents: u64) -> f64 {
    cents as f64 / 100.0
}

/// `GET B/monthly-cost`: this month's metered estimate. Nothing is invoiced through Stripe.
async fn monthly_cost(tenant: Tenant) -> Json<Value> {
    let answer = tenant
        .read(|t| {
            let usage = Usage::of(t, None, None);
            let total =
                cents(BASE_MONTHLY_PLATFORM_FEE_USD) + usage.identity_overage_cents + usage.enforcement_overage_cents;
            json!({
                "tier": ACTIVE_TIER,
                "period": current_period(),
                "action_cost_usd": usd(usage.enforcement_overage_cents),
                "pilot_meter_estimate": {
                    "policy_checks_total": usage.policy_checks,
                    "governed_identities_observed": usage.identities,
                    "policy_checks_cost_usd": usd(usage.enforcement_overage_cents),
                    "governed_identity_cost_usd": usd(usage.identity_overage_cents),
                    "credit_discount_usd": 0.0,
                    "net_cost_usd": usd(total),
                    "total_cost_usd": usd(total),
                },
                "stripe_reconciliation": {
                    "stripe_invoice_total_usd": 0.0,
                    "stripe_reconciliation_usd": 0.0,
                },
            })
        })
        .await;
    Json(answer)
}

/// `GET B/credit-bank?as_of=&average_monthly_burn_cents=`: the tenant has no prepaid credit
/// wallets, so the balance is 0 and no low-balance alert is raised.
async fn credit_bank(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>, query: QueryParams) -> Answer {
    let as_of = match query.get("as_of") {
        Some(at) if clock::is_rfc3339(at) => at.to_owned(),
        Some(at) => return Err(ApiError::invalid(format!("`as_of` must be an RFC 3339 timestamp, got {at:?}"))),
        None => clock::now(),
    };
    let burn = query.u64_in("average_monthly_burn_cents", 0..=u64::MAX)?;
    Ok(Json(json!({
        "as_of": as_of,
        "total_active_balance_cents": 0,
        "active_wallet_count": 0,
        "low_balance_threshold_cents": LOW_BALANCE_THRESHOLD_CENTS,
        "low_balance_alert": false,
        "average_monthly_burn_cents": burn,
        "active_wallets": [],
    })))
}

/// `POST B/estimate`: a bill estimate for `period` (`YYYY-MM`, this month by default).
///
/// Line items in cents: the platform fee, identity and enforcement overage (capped together
/// by the overage cap), no storage charges, the compliance uplift (a percentage of the
/// subtotal), the fixed discount (a negative percentage of the uplifted subtotal) and no
/// credits. `compliance_receipt` is the SHA-256 of the summary.
async fn estimate(tenant: Tenant, body: Body) -> Answer {
    let body = match body.0 {
        Value::Null => serde_json::Map::new(),
        other => Body(other).into_object()?,
    };
    let fields = Fields(&body);
    let period = match fields.opt_non_empty_str("period")? {
        Some(period) if is_period(&period) => period,
        Some(period) => return Err(ApiError::invalid(format!("`period` must be YYYY-MM, got {period:?}"))),
        None => current_period(),
    };
    let as_of = fields.opt_timestamp("as_of")?;
    let uplift_percent = fields.opt_f64_in("compliance_uplift_percent", 0.0, 100.0)?.unwrap_or(0.0);
    let discount_percent = fields.opt_f64_in("fixed_discount_percent", 0.0, 100.0)?.unwrap_or(0.0);
    let burn = fields.opt_u64("average_monthly_burn_cents")?;
    let identities = fields.opt_u64("active_identities_override")?;
    let policy_checks = fields.opt_u64("policy_checks_override")?;
    let answer = tenant
        .read(|t| {
            let usage = Usage::of(t, identities, policy_checks);
            let platform = cents(BASE_MONTHLY_PLATFORM_FEE_USD);
            let subtotal = platform + usage.identity_overage_cents + usage.enforcement_overage_cents;
            let uplift = cents(usd(subtotal) * uplift_percent / 100.0);
            let gross = subtotal + uplift;
            let discount = cents(usd(gross) * discount_percent / 100.0).min(gross);
            let net = gross - discount;
            let summary = json!({
                "gross_bill_cents": gross,
                "net_total_cents": net,
                "line_item_platform_fee_cents": platform,
                "line_item_identity_overage_cents": usage.identity_overage_cents,
                "line_item_enforcement_overage_cents": usage.enforcement_overage_cents,
                "line_item_storage_capacity_cents": 0,
                "line_item_storage_retention_cents": 0,
                "line_item_compliance_uplift_cents": uplift,
                "line_item_fixed_discount_cents": -i64::try_from(discount).unwrap_or(i64::MAX),
                "line_item_credits_applied_cents": 0,
                "credit_burns": [],
            });
            json!({
                "period": period,
                "as_of": as_of,
                "pricing_tier": ACTIVE_TIER,
                "active_identities": usage.identities,
                "policy_checks": usage.policy_checks,
                "average_monthly_burn_cents": burn,
                "summary": summary,
                "worm_retention_days": WORM_RETENTION_DAYS,
                "compliance_receipt": format!("sha256:{}", clock::sha256_hex(summary.to_string().as_bytes())),
                "low_balance_alert": false,
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET B/invoices?limit=`: no invoices.
async fn invoices(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>, query: QueryParams) -> Answer {
    query.u64_in("limit", 1..=1000)?;
    Ok(Json(json!({
        "invoices": [],
        "totals": { "amount_due_cents": 0, "amount_paid_cents": 0 },
        "count": 0,
    })))
}

/// `GET B/reports`: no billing reports.
async fn reports(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>) -> Json<Value> {
    Json(json!({ "reports": [], "count": 0 }))
}

/// `GET B/reports/{year}/{month}`: 404 for every valid month, 400 for an invalid one.
async fn report(PathParams(path): PathParams<MonthPath>) -> Answer {
    let (year, month) = month_of(&path)?;
    Err(ApiError::not_found(format!("no billing report for {year:04}-{month:02} in tenant {:?}", path.tenant)))
}

/// `GET B/artifacts?limit=`: no billing artifacts.
async fn artifacts(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>, query: QueryParams) -> Answer {
    query.u64_in("limit", 1..=1000)?;
    Ok(Json(json!({ "artifacts": [], "count": 0 })))
}

/// `GET B/artifacts/{year}/{month}`: 404 for every valid month, 400 for an invalid one.
async fn artifact(PathParams(path): PathParams<MonthPath>) -> Answer {
    let (year, month) = month_of(&path)?;
    Err(ApiError::not_found(format!("no billing artifact for {year:04}-{month:02} in tenant {:?}", path.tenant)))
}

/// The year (2020–9999) and month (1–12) of a path, which clients send without zero padding.
fn month_of(path: &MonthPath) -> Result<(u64, u64), ApiError> {
    let year = path.year.parse::<u64>().ok().filter(|y| (2020..=9999).contains(y));
    let month = path.month.parse::<u64>().ok().filter(|m| (1..=12).contains(m));
    match (year, month) {
        (Some(year), Some(month)) => Ok((year, month)),
        _ => Err(ApiError::invalid("the path needs a year from 2020 to 9999 and a month from 1 to 12")),
    }
}

/// Whether `text` is `YYYY-MM` with a month from 01 to 12.
fn is_period(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..].iter().all(u8::is_ascii_digit)
        && text[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
}

/// The current month as `YYYY-MM`.
fn current_period() -> String {
    clock::now()[..7].to_owned()
}
