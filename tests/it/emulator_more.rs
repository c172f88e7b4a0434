//! The GovAPI emulator's remaining areas over real HTTP: fleets, endpoints, API keys, actions,
//! approvals, exceptions and artifacts, packs, MCP, billing, the read-only insights, the
//! emulator-only seeding routes, and fault injection.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use thoth::emulator::{Emulator, EmulatorConfig, Faults};

use crate::emulator::{assert_error, config, data, files_contain, is_timestamp, send, start, Api, KEY};
use crate::support::TempDir;

async fn start_with(dir: &Path, faults: Faults) -> Emulator {
    Emulator::start(EmulatorConfig { faults, ..config(dir) }, "127.0.0.1:0").await.expect("the emulator starts")
}

/// Seeds an approval through the emulator-only route.
async fn seed_approval(api: &Api, body: Value) -> Value {
    let (status, row) = api.post("/acme/_emulator/approvals", body).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    row
}

fn str_of<'a>(body: &'a Value, key: &str) -> &'a str {
    body[key].as_str().unwrap_or_else(|| panic!("`{key}` is a string in {body}"))
}

#[tokio::test]
async fn fleets_support_crud_and_answer_404_after_delete() {
    let dir = TempDir::new("fleets");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let body = json!({"name": "Laptops", "region": "eu-west-1", "status": "active", "rollout_strategy": "canary", "rollout_pct": 10, "provider": "jamf"});
    let (status, created) = api.post("/acme/thoth/fleets", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let fleet_id = str_of(&created, "fleet_id").to_owned();
    assert!(str_of(&created, "fleet_code").starts_with("FLT-"));
    assert_eq!(created["endpoint_count"], 0);
    let path = format!("/acme/thoth/fleets/{fleet_id}");
    assert_eq!(api.get(&path).await.1, created);
    assert_eq!(data(&api.get("/acme/thoth/fleets").await.1).len(), 1);

    // PUT replaces the writable fields: what is left out is cleared.
    let (status, updated) = api.put(&path, json!({"name": "Laptops EU", "status": "paused"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["name"], "Laptops EU");
    assert_eq!(updated["region"], Value::Null);
    assert_eq!(updated["created_at"], created["created_at"]);

    // Endpoints registered in the fleet count towards it.
    let endpoint =
        json!({"endpoint_id": "ep-1", "hostname": "mac-1", "fleet_id": fleet_id, "enforcement_mode": "enforce"});
    assert_eq!(api.post("/acme/thoth/endpoints", endpoint).await.0, StatusCode::OK);
    let (_, read) = api.get(&path).await;
    assert_eq!((&read["endpoint_count"], &read["compliance_pct"]), (&json!(1), &json!(100.0)));

    assert_error(
        &api.post("/acme/thoth/fleets", json!({"name": "x", "status": "asleep"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &api.post("/acme/thoth/fleets", json!({"region": "x"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    let (status, deleted) = api.delete(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted"], true);
    assert_error(&api.get(&path).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.delete(&path).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.put(&path, json!({"name": "x"})).await, StatusCode::NOT_FOUND, "not_found");
    assert!(data(&api.get("/acme/thoth/fleets").await.1).is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn endpoints_register_idempotently_filter_and_quarantine() {
    let dir = TempDir::new("endpoints");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({
        "endpoint_id": "ep-1", "hostname": "mac-1", "environment": "prod", "enrollment": "jamf",
        "proxy_version": "1.9.0", "risk_score": 80.5, "agent_ids": ["agent-a"],
    });

    let (status, first) = api.post("/acme/thoth/endpoints", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = api.post("/acme/thoth/endpoints", body).await;
    assert_eq!(first["created_at"], second["created_at"]);
    assert_eq!((&first["status"], &first["enforcement_mode"]), (&json!("online"), &json!("shadow")));
    assert_eq!(first["agent_ids"], json!(["agent-a"]));
    let other = json!({"endpoint_id": "ep-2", "hostname": "win-2", "environment": "dev", "proxy_version": "1.10.1"});
    api.post("/acme/thoth/endpoints", other).await;
    assert_eq!(data(&api.get("/acme/thoth/endpoints").await.1).len(), 2, "one row per endpoint id");
    let (_, prod) = api.get("/acme/thoth/endpoints?env=prod").await;
    assert_eq!(data(&prod).len(), 1);
    assert_eq!(data(&prod)[0]["endpoint_id"], "ep-1");

    let (status, quarantined) = api.post("/acme/thoth/endpoints/ep-1/quarantine", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(quarantined["status"], "quarantined");
    // Quarantine is sent without any body at all, too.
    assert_eq!(api.call(Method::POST, "/acme/thoth/endpoints/ep-2/quarantine", None).await.0, StatusCode::OK);
    // Registering again does not lift a quarantine.
    let (_, again) = api.post("/acme/thoth/endpoints", json!({"endpoint_id": "ep-1", "hostname": "mac-1"})).await;
    assert_eq!(again["status"], "quarantined");

    let (_, stats) = api.get("/acme/thoth/endpoints/stats").await;
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["quarantined"], 2);
    assert_eq!(stats["latest_version"], "1.10.1");
    assert_eq!(stats["unmanaged"], 2, "ep-1 lost its enrollment when re-registered without it");

    assert_error(&api.get("/acme/thoth/endpoints/ep-9").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &api.post("/acme/thoth/endpoints/ep-9/quarantine", json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let no_fleet = api
        .post("/acme/thoth/endpoints", json!({"endpoint_id": "ep-3", "hostname": "h", "fleet_id": "flt_nope"}))
        .await;
    assert_error(&no_fleet, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(no_fleet.1["message"].as_str().is_some_and(|m| m.contains("fleet does not exist")));
    assert_error(
        &api.post("/acme/thoth/endpoints", json!({"endpoint_id": "ep-3"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn fleet_figures_count_their_own_endpoints_against_the_newest_version() {
    let dir = TempDir::new("fleet-figures");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let (_, macs) = api.post("/acme/thoth/fleets", json!({"name": "Macs"})).await;
    let (_, empty) = api.post("/acme/thoth/fleets", json!({"name": "Empty"})).await;
    let macs_id = str_of(&macs, "fleet_id").to_owned();
    let endpoints = [
        ("ep-1", Some(macs_id.as_str()), "1.9.0", "enforce"),
        ("ep-2", Some(macs_id.as_str()), "v1.10.0", "shadow"),
        ("ep-3", Some(macs_id.as_str()), "1.2", "enforce"),
        // The newest version is on an endpoint of no fleet: it still makes the others drifted.
        ("ep-4", None, "1.10.1", "enforce"),
    ];
    for (id, fleet_id, version, mode) in endpoints {
        let body = json!({"endpoint_id": id, "hostname": id, "fleet_id": fleet_id, "proxy_version": version, "enforcement_mode": mode});
        assert_eq!(api.post("/acme/thoth/endpoints", body).await.0, StatusCode::OK);
    }
    let figures = |fleet: &Value| {
        let keys = ["endpoint_count", "drifted_endpoint_count", "drift_pct", "compliance_pct"];
        keys.map(|k| fleet[k].clone())
    };
    let listed = data(&api.get("/acme/thoth/fleets").await.1).clone();
    assert_eq!(figures(&listed[0]), [json!(3), json!(3), json!(100.0), json!(66.67)]);
    assert_eq!(figures(&listed[1]), [json!(0), json!(0), json!(0.0), json!(0.0)]);
    let (_, one) = api.get(&format!("/acme/thoth/fleets/{macs_id}")).await;
    assert_eq!(figures(&one), figures(&listed[0]), "a fleet read alone has the figures of the list");
    assert_eq!(str_of(&empty, "fleet_id"), str_of(&listed[1], "fleet_id"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn mdm_sync_counts_the_endpoints_enrolled_with_the_provider() {
    let dir = TempDir::new("mdm-endpoints");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let (_, fleet) = api.post("/acme/thoth/fleets", json!({"name": "Macs"})).await;
    for (id, fleet_id) in [("ep-1", fleet["fleet_id"].clone()), ("ep-2", Value::Null)] {
        let body = json!({"endpoint_id": id, "hostname": id, "enrollment": "jamf", "fleet_id": fleet_id});
        assert_eq!(api.post("/acme/thoth/endpoints", body).await.0, StatusCode::OK);
    }
    api.post("/acme/thoth/endpoints", json!({"endpoint_id": "ep-3", "hostname": "h", "enrollment": "intune"})).await;
    api.post("/acme/thoth/mdm/providers", json!({"provider": "jamf"})).await;
    let (_, job) = api.post("/acme/thoth/mdm/providers/jamf/sync", json!({})).await;
    let path = format!("/acme/thoth/mdm/sync-jobs/{}", str_of(&job, "job_id"));
    api.get(&path).await;
    let (_, done) = api.get(&path).await;
    assert_eq!(
        (&done["status"], &done["synced_endpoints"], &done["unassigned_count"]),
        (&json!("succeeded"), &json!(2), &json!(1))
    );
    assert_eq!(data(&api.get("/acme/thoth/mdm/providers").await.1)[0]["synced_endpoints"], 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn api_key_plaintext_is_returned_once_and_keys_revoke() {
    let dir = TempDir::new("api-keys");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let (_, fleet) = api.post("/acme/thoth/fleets", json!({"name": "Servers"})).await;
    let fleet_id = str_of(&fleet, "fleet_id").to_owned();

    let unknown = api
        .post(
            "/acme/thoth/api-keys",
            json!({"scope_level": "fleet", "scope_target_id": "flt_missing", "permissions": ["read"]}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(unknown.1["message"].as_str().is_some_and(|m| m.contains("fleet does not exist")));

    let body = json!({"scope_level": "fleet", "scope_target_id": fleet_id, "permissions": ["read", "execute"], "name": "ci", "ttl_seconds": 3600});
    let (status, created) = api.post("/acme/thoth/api-keys", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let plaintext = str_of(&created, "api_key").to_owned();
    let key_id = str_of(&created, "key_id").to_owned();
    assert!(plaintext.starts_with("thoth_live_"));
    assert!(plaintext.starts_with(str_of(&created, "prefix")));
    assert!(is_timestamp(&created["expires_at"]));
    assert_eq!(created["active"], true);

    let (_, listed) = api.get("/acme/thoth/api-keys").await;
    let keys = listed["api_keys"].as_array().expect("an `api_keys` array");
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("api_key").is_none());
    assert!(!listed.to_string().contains(&plaintext), "the plaintext is never shown again");
    assert!(!files_contain(dir.path(), &plaintext), "the plaintext is never stored");

    let authorize = format!("/acme/thoth/api-keys/{key_id}/authorize");
    let check = |key: &str, permission: &str| json!({"api_key": key, "permission": permission, "resource_type": "fleet", "resource_id": fleet_id});
    let (_, ok) = api.post(&authorize, check(&plaintext, "READ")).await;
    assert_eq!(
        (&ok["valid"], &ok["permission_allowed"], &ok["scope_allowed"]),
        (&json!(true), &json!(true), &json!(true))
    );
    let (_, denied) = api.post(&authorize, check(&plaintext, "write")).await;
    assert_eq!((&denied["valid"], &denied["permission_allowed"]), (&json!(true), &json!(false)));
    let (_, wrong) = api.post(&authorize, check("thoth_live_wrong", "read")).await;
    assert_eq!(wrong["valid"], false);
    let (_, metrics) = api.get("/acme/thoth/api-keys/metrics").await;
    assert_eq!((&metrics["key_usage_24h"], &metrics["active_sdk_keys"]), (&json!(2), &json!(1)));

    let revoke = format!("/acme/thoth/api-keys/{key_id}");
    assert_eq!(api.delete(&revoke).await.0, StatusCode::OK);
    assert_eq!(api.delete(&revoke).await.0, StatusCode::OK, "revoking twice is harmless");
    let (_, listed) = api.get("/acme/thoth/api-keys").await;
    assert_eq!(listed["api_keys"][0]["active"], false);
    assert_eq!(api.post(&authorize, check(&plaintext, "read")).await.1["valid"], false);
    assert_error(&api.delete("/acme/thoth/api-keys/key_missing").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &api.post(
            "/acme/thoth/api-keys",
            json!({"scope_level": "agent", "scope_target_id": "a", "permissions": ["root"]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn backfills_take_parameters_from_the_query_a_body_or_a_null_body() {
    let dir = TempDir::new("backfills");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    seed_approval(&api, json!({"agent_id": "ops", "tool_name": "shell"})).await;
    seed_approval(&api, json!({"agent_id": "ops", "tool_name": "shell", "status": "denied"})).await;
    seed_approval(&api, json!({"agent_id": "dev", "tool_name": "browser", "status": "approved"})).await;

    // Terraform: query string and a literal `null` body.
    let primary = "/acme/governance/evidence/thoth/backfill";
    let (status, dry) =
        api.post(&format!("{primary}?dry_run=true&include_blocked_events=false&limit=200"), json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (&dry["examined"], &dry["candidates"], &dry["would_create"], &dry["created"]),
        (&json!(3), &json!(2), &json!(2), &json!(0))
    );
    assert_eq!(dry["source_collection"], "behavioral_events");
    // The operator: a JSON object body and no query string.
    let (_, first) = api.post(primary, json!({"limit": 2, "integration_id": "thoth-runtime"})).await;
    assert_eq!((&first["examined"], &first["created"]), (&json!(2), &json!(2)));
    assert_eq!(first["evidence_ids"].as_array().map(Vec::len), Some(2));
    // No body at all, defaults only.
    let (status, rest) = api.call(Method::POST, primary, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&rest["created"], &rest["skipped_existing"]), (&json!(1), &json!(2)));
    assert_error(
        &api.post(&format!("{primary}?limit=0"), json!(null)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(&api.post(primary, json!({"dry_run": "maybe"})).await, StatusCode::BAD_REQUEST, "invalid_request");

    // The evidence chain and its verification.
    let (_, chain) = api.get("/acme/thoth/evidence/chain?limit=2&from_sequence=1").await;
    assert_eq!(chain["total"], 2);
    assert_eq!(data(&chain)[0]["chain_index"], 2);
    let (_, verified) = api.get("/acme/governance/evidence/verify-chain").await;
    assert_eq!(
        (&verified["verified"], &verified["records_checked"], &verified["chain_head"]),
        (&json!(true), &json!(3), &json!(3))
    );

    // The emulator-only switch makes the primary path refuse, so clients fall back.
    let fallback = "/acme/thoth/governance/evidence/thoth/backfill";
    for (code, error) in [(404, "not_found"), (405, "method_not_allowed")] {
        api.put("/acme/_emulator/switches", json!({"evidence_backfill_primary_status": code})).await;
        let refused = api.post(primary, json!(null)).await;
        assert_error(&refused, StatusCode::from_u16(code).expect("a status"), error);
        let (status, served) = api.post(&format!("{fallback}?dry_run=true"), json!(null)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(served["skipped_existing"], 3);
    }
    api.put("/acme/_emulator/switches", json!({"evidence_backfill_primary_status": null})).await;
    assert_eq!(api.post(primary, json!(null)).await.0, StatusCode::OK);

    // The decision-field backfill, all three ways.
    let decision = "/acme/thoth/governance/backfill-decision-fields";
    let (_, by_query) = api.post(&format!("{decision}?dry_run=true&limit=500&window_hours=720"), json!(null)).await;
    assert_eq!(
        (&by_query["examined"], &by_query["skipped_no_change"], &by_query["would_update"]),
        (&json!(3), &json!(3), &json!(0))
    );
    let (_, by_body) = api.post(decision, json!({"include_blocked_events": false, "window_hours": 24})).await;
    assert_eq!(by_body["examined"], 2);
    assert_eq!(api.call(Method::POST, decision, None).await.1["row_ids"], json!([]));
    assert_error(&api.post(decision, json!({"window_hours": 9999})).await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&api.post(decision, json!([1])).await, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn policy_sync_answers_a_terminal_status_after_a_trigger() {
    let dir = TempDir::new("policy-sync");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let (_, idle) = api.get("/acme/thoth/policies/sync/status").await;
    assert_eq!((&idle["status"], &idle["configured"]), (&json!("idle"), &json!(false)));
    let (status, nothing) = api.post("/acme/thoth/policies/sync", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nothing["status"], "no_change");

    let bundle =
        json!({"name": "baseline", "framework": "OPA", "raw_policy": "package p", "assignments": ["agent:ops"]});
    api.post("/acme/thoth/policy-bundles", bundle).await;
    let (_, synced) = api.post("/acme/thoth/policies/sync", json!({})).await;
    assert_eq!((&synced["status"], &synced["changed"]), (&json!("success"), &json!(true)));
    assert_eq!((&synced["applied_agents"], &synced["applied_count"]), (&json!(["ops"]), &json!(1)));
    let (_, status_now) = api.get("/acme/thoth/policies/sync/status").await;
    assert_eq!(status_now, synced);
    assert!(is_timestamp(&status_now["synced_at"]));
    assert_eq!(api.post("/acme/thoth/policies/sync", json!({})).await.1["status"], "no_change");
    emulator.shutdown().await;
}

#[tokio::test]
async fn approvals_are_seeded_listed_and_resolved() {
    let dir = TempDir::new("approvals");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    seed_approval(&api, json!({"approval_id": "apr-1", "agent_id": "ops", "reason": "shell access"})).await;
    seed_approval(&api, json!({"approval_id": "apr-2", "agent_id": "dev"})).await;
    seed_approval(&api, json!({"approval_id": "apr-3", "status": "denied"})).await;
    assert_eq!(api.post("/acme/_emulator/approvals", json!({"approval_id": "apr-1"})).await.0, StatusCode::CONFLICT);

    let (_, all) = api.get("/acme/thoth/approvals").await;
    assert_eq!((&all["total"], &all["page"]), (&json!(3), &json!(1)));
    let (_, pending) = api.get("/acme/thoth/approvals?status=pending&page=2&per_page=1").await;
    assert_eq!((&pending["total"], &pending["per_page"]), (&json!(2), &json!(1)));
    assert_eq!(data(&pending)[0]["approval_id"], "apr-2");

    let (status, resolved) = api.post("/acme/thoth/approvals/apr-1/resolve", json!({"decision": "approve"})).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!((&resolved["decision"], &resolved["status"]), (&json!("approve"), &json!("approved")));
    assert_eq!(resolved["resolved_by"], "api");
    assert_eq!(
        api.post("/acme/thoth/approvals/apr-1/resolve", json!({"decision": "approved"})).await.0,
        StatusCode::OK
    );
    let conflict = api.post("/acme/thoth/approvals/apr-1/resolve", json!({"decision": "deny"})).await;
    assert_error(&conflict, StatusCode::CONFLICT, "approval_already_resolved");
    let (_, listed) = api.get("/acme/thoth/approvals?status=approved").await;
    assert_eq!(data(&listed)[0]["approval_id"], "apr-1");
    assert_error(
        &api.post("/acme/thoth/approvals/nope/resolve", json!({"decision": "deny"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.post("/acme/thoth/approvals/apr-2/resolve", json!({"decision": "maybe"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn policy_exceptions_are_created_once_reviewed_and_applied() {
    let dir = TempDir::new("exceptions");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({
        "request_id": "req with space", "violation_id": "vio-1", "requested_by": "ana",
        "business_justification": "quarterly export", "frequency_estimate": "weekly",
        "data_sensitivity": "financial", "agent_id": "ops",
    });

    let (status, created) = api.post("/acme/thoth/policy-exceptions", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((&created["status"], &created["policy_change"]), (&json!("pending"), &json!({})));
    let path = "/acme/thoth/policy-exceptions/req%20with%20space";
    assert_eq!(api.get(path).await.1, created);
    assert_eq!(api.post("/acme/thoth/policy-exceptions", body.clone()).await, (StatusCode::OK, created.clone()));
    let mut changed = body;
    changed["business_justification"] = json!("something else");
    assert_error(
        &api.post("/acme/thoth/policy-exceptions", changed).await,
        StatusCode::CONFLICT,
        "policy_exception_exists",
    );
    let generated = api
        .post("/acme/thoth/policy-exceptions", json!({"violation_id": "v", "requested_by": "b", "business_justification": "j", "frequency_estimate": "daily", "data_sensitivity": "internal"}))
        .await;
    assert!(str_of(&generated.1, "request_id").starts_with("req_"));
    let (_, listed) = api.get("/acme/thoth/policy-exceptions?requested_by=ana&tenant_id=acme").await;
    assert_eq!(listed["total"], 1);
    assert_error(
        &api.get("/acme/thoth/policy-change-artifacts/req%20with%20space").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let review = json!({"review_decision": "approve", "reviewed_by": "sec-lead", "target_environment": "staging", "policy_change": {"raw_policy": "permit(principal, action, resource);"}});
    let (status, reviewed) = api.call(Method::PATCH, &format!("{path}/review"), Some(review.clone())).await;
    assert_eq!(status, StatusCode::OK, "{reviewed}");
    assert_eq!((&reviewed["status"], &reviewed["reviewed_by"]), (&json!("approved"), &json!("sec-lead")));
    assert_eq!(api.call(Method::PATCH, &format!("{path}/review"), Some(review)).await.0, StatusCode::OK);
    let other = json!({"review_decision": "deny", "reviewed_by": "sec-lead"});
    assert_error(
        &api.call(Method::PATCH, &format!("{path}/review"), Some(other)).await,
        StatusCode::CONFLICT,
        "policy_exception_already_reviewed",
    );

    // The approving review generated the artifact; applying it creates a bundle version.
    let artifact_path = "/acme/thoth/policy-change-artifacts/req%20with%20space";
    let (_, artifact) = api.get(artifact_path).await;
    assert_eq!((&artifact["target_environment"], &artifact["status"]), (&json!("staging"), &json!("generated")));
    let (status, applied) =
        api.post(&format!("{artifact_path}/apply"), json!({"applied_by": "ci", "apply_channel": "govapi"})).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert!(is_timestamp(&applied["applied_at"]));
    assert_eq!(applied["govapi_resource"]["name"], "exception-req with space");
    let (_, bundles) = api.get("/acme/thoth/policy-bundles?assignment=agent:ops").await;
    assert_eq!(bundles["total"], 1);
    assert_eq!(bundles["data"][0]["raw_policy"], "permit(principal, action, resource);");
    let (_, artifacts) = api.get("/acme/thoth/policy-change-artifacts?target_environment=staging").await;
    assert_eq!(data(&artifacts)[0]["status"], "applied");

    // Seeded artifacts apply through other channels without a bundle.
    let seeded = api
        .post("/acme/_emulator/policy-change-artifacts", json!({"request_id": "req-seeded", "policy_format": "yaml"}))
        .await;
    assert_eq!(seeded.0, StatusCode::CREATED);
    assert_error(
        &api.post("/acme/thoth/policy-change-artifacts/req-seeded/apply", json!({"applied_by": "ci"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (_, terraform) = api
        .post(
            "/acme/thoth/policy-change-artifacts/req-seeded/apply",
            json!({"applied_by": "ci", "apply_channel": "terraform"}),
        )
        .await;
    assert_eq!(terraform["govapi_resource"], Value::Null);

    assert_error(
        &api.call(
            Method::PATCH,
            "/acme/thoth/policy-exceptions/nope/review",
            Some(json!({"review_decision": "approve", "reviewed_by": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call(
            Method::PATCH,
            &format!("{path}/review"),
            Some(json!({"review_decision": "yes", "reviewed_by": "x"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn packs_apply_list_and_revoke() {
    let dir = TempDir::new("packs");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let (_, catalogue) = api.get("/acme/thoth/packs").await;
    assert_eq!(catalogue["total"], catalogue["packs"].as_array().map(Vec::len).unwrap_or_default());
    let (_, rules) = api.get("/acme/thoth/packs/soc2-type2/rules").await;
    assert_eq!((&rules["total_versions"], &rules["current_version"]["version"]), (&json!(3), &json!(3)));
    let (_, history) = api.get("/acme/thoth/packs/soc2-type2/rules/history").await;
    assert_eq!((&history["total"], &history["versions"][0]["version"]), (&json!(3), &json!(3)));
    assert_error(&api.get("/acme/thoth/packs/nope/rules").await, StatusCode::NOT_FOUND, "not_found");

    let body = json!({"pack_id": "soc2-type2", "environment": "prod", "overrides": {"behavioral_controls": {"trust_floor": 0.4}}});
    let (status, applied) = api.post("/acme/thoth/agents/ops/apply-pack", body).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(
        (&applied["status"], &applied["regulation"], &applied["rule_version"]),
        (&json!("active"), &json!("SOC 2"), &json!(3))
    );
    api.post("/acme/thoth/agents/ops/apply-pack", json!({"pack_id": "cis-l1"})).await;
    let (_, packs) = api.get("/acme/thoth/agents/ops/packs").await;
    let ids: Vec<&Value> = packs["packs"].as_array().expect("`packs`").iter().map(|p| &p["pack_id"]).collect();
    assert_eq!(ids, [&json!("cis-l1"), &json!("soc2-type2")]);

    assert_eq!(api.delete("/acme/thoth/agents/ops/packs/cis-l1").await.0, StatusCode::OK);
    assert_error(&api.delete("/acme/thoth/agents/ops/packs/cis-l1").await, StatusCode::NOT_FOUND, "not_found");
    let (_, packs) = api.get("/acme/thoth/agents/ops/packs").await;
    assert_eq!(packs["packs"].as_array().map(Vec::len), Some(1));
    let (_, all) = api.get("/acme/thoth/agents/ops/packs?include_revoked=true").await;
    assert_eq!(all["packs"][0]["status"], "revoked");

    for bad in [
        json!({"pack_id": "made-up"}),
        json!({"pack_id": "cis-l1", "environment": "staging"}),
        json!({"pack_id": "cis-l1", "overrides": {"behavioral_controls": {"trust_floor": 2}}}),
    ] {
        assert_error(
            &api.post("/acme/thoth/agents/ops/apply-pack", bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }

    let bulk = json!({"pack_ids": ["gdpr-ai-agents", "made-up"], "agent_ids": ["a", "b"], "all_agents": true});
    let (status, result) = api.post("/acme/thoth/packs/apply", bulk).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["target_agent_ids"], json!(["a", "b", "ops"]));
    assert_eq!(
        (&result["applied_count"], &result["failed_count"], &result["total_ops"]),
        (&json!(3), &json!(3), &json!(6))
    );
    assert_error(
        &api.post("/acme/thoth/packs/apply", json!({"pack_ids": ["cis-l1"]})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (_, runtime) = api.get("/acme/thoth/packs/runtime-status?env=prod").await;
    assert_eq!(runtime["total_active_assignments"], 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn mcp_vendors_with_escaped_ids_and_inventory() {
    let dir = TempDir::new("mcp");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({"vendor_id": "vendor with spaces", "display_name": "OpenAI", "host_patterns": ["api.openai.com", "*.openai.com", "api.openai.com"]});

    let (status, created) = api.post("/acme/thoth/mcp/vendors", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["approved"], false);
    assert_eq!(created["host_patterns"], json!(["api.openai.com", "*.openai.com", "api.openai.com"]), "kept as sent");
    assert_error(&api.post("/acme/thoth/mcp/vendors", body).await, StatusCode::CONFLICT, "mcp_vendor_exists");
    let path = "/acme/thoth/mcp/vendors/vendor%20with%20spaces";
    assert_eq!(api.get(path).await.1, created);

    let update = json!({"vendor_id": "vendor with spaces", "display_name": "OpenAI API", "host_patterns": ["api.openai.com"], "approved": true});
    let (status, updated) = api.put(path, update).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((&updated["display_name"], &updated["approved"]), (&json!("OpenAI API"), &json!(true)));
    let mismatch = json!({"vendor_id": "other", "display_name": "x", "host_patterns": ["x"]});
    assert_error(&api.put(path, mismatch).await, StatusCode::BAD_REQUEST, "invalid_request");
    api.post(
        "/acme/thoth/mcp/vendors",
        json!({"vendor_id": "figma", "display_name": "Figma", "host_patterns": ["api.figma.com"]}),
    )
    .await;
    assert_eq!(data(&api.get("/acme/thoth/mcp/vendors?approved=true").await.1).len(), 1);
    assert_eq!(data(&api.get("/acme/thoth/mcp/vendors?approved=false").await.1)[0]["vendor_id"], "figma");

    for (endpoint, host, calls) in
        [("ep-1", "api.openai.com", 5), ("ep-1", "api.figma.com", 2), ("ep-2", "api.figma.com", 7)]
    {
        let seeded =
            api.post("/acme/_emulator/mcp-calls", json!({"endpoint_id": endpoint, "host": host, "calls": calls})).await;
        assert_eq!(seeded.0, StatusCode::CREATED);
    }
    let (_, report) = api.get("/acme/thoth/mcp/inventory/report?window_hours=24").await;
    assert_eq!((&report["total"], &report["window_hours"]), (&json!(2), &json!(24)));
    assert_eq!((&data(&report)[0]["approved_calls"], &data(&report)[0]["unapproved_calls"]), (&json!(5), &json!(2)));
    let (_, digest) = api.get("/acme/thoth/mcp/inventory/digest").await;
    assert_eq!(
        (&digest["window_hours"], &digest["unapproved_endpoints"], &digest["unapproved_calls"]),
        (&json!(168), &json!(2), &json!(9))
    );
    assert_eq!(digest["top_unapproved_endpoints"][0]["endpoint_id"], "ep-2");
    assert_eq!(digest["recommended_actions"].as_array().map(Vec::len), Some(1));

    let (_, verify) = api.post("/acme/thoth/mcp/catalog/verify?env=prod", json!({"principal": "agent:ops"})).await;
    assert_eq!(
        (&verify["allowed_tools"], &verify["blocked_tools"]),
        (&json!(["vendor with spaces"]), &json!(["figma"]))
    );
    assert_error(
        &api.post("/acme/thoth/mcp/catalog/verify", json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    let (status, deleted) = api.delete(path).await;
    assert_eq!((status, &deleted["deleted"]), (StatusCode::OK, &json!(true)));
    assert_error(&api.get(path).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.delete(path).await, StatusCode::NOT_FOUND, "not_found");
    emulator.shutdown().await;
}

#[tokio::test]
async fn overage_cap_reads_back_through_pricing() {
    let dir = TempDir::new("billing");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let (_, fresh) = api.get("/acme/billing/pricing").await;
    assert_eq!(fresh["pilot_package"]["overage_cap_usd"], 0.0);
    assert!(fresh["metered_pricing"]["included_policy_checks"].is_u64());
    let (status, written) = api.put("/acme/billing/overage-cap", json!({"overage_cap_usd": 250.5})).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["pilot_package"]["overage_cap_usd"], 250.5);
    assert_eq!(api.get("/acme/billing/pricing").await.1, written);
    assert_error(
        &api.put("/acme/billing/overage-cap", json!({"overage_cap_usd": -1})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(&api.put("/acme/billing/overage-cap", json!({})).await, StatusCode::BAD_REQUEST, "invalid_request");

    let (_, cost) = api.get("/acme/billing/monthly-cost").await;
    assert_eq!(cost["pilot_meter_estimate"]["total_cost_usd"], 2500.0);
    let (_, estimate) = api
        .post(
            "/acme/billing/estimate",
            json!({"period": "2026-03", "active_identities_override": 120, "fixed_discount_percent": 10}),
        )
        .await;
    assert_eq!(estimate["summary"]["line_item_identity_overage_cents"], 25_050, "capped at the overage cap");
    assert_eq!(estimate["summary"]["line_item_fixed_discount_cents"], -27_505);
    assert_error(
        &api.post("/acme/billing/estimate", json!({"period": "March"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_eq!(api.get("/acme/billing/invoices?limit=5").await.1["count"], 0);
    assert_eq!(api.get("/acme/billing/reports").await.1["reports"], json!([]));
    assert_error(&api.get("/acme/billing/reports/2026/1").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.get("/acme/billing/artifacts/2026/13").await, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn read_only_insights_are_schema_shaped() {
    let dir = TempDir::new("insights");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    seed_approval(&api, json!({"agent_id": "ops", "tool_name": "shell", "status": "denied", "violation_id": "vio-7"}))
        .await;
    seed_approval(&api, json!({"agent_id": "ops", "tool_name": "browser"})).await;

    let (_, slos) = api.get("/acme/thoth/governance/evidence-slos").await;
    assert_eq!(
        (&slos["window_hours"], &slos["scan_limit"], &slos["tenant_id"]),
        (&json!(24), &json!(20000), &json!("acme"))
    );
    assert_eq!(slos["metrics"]["rows_scanned"], 2);
    assert_eq!(slos["passed"], false, "the blocked decision has no evidence yet: {slos}");
    api.post("/acme/governance/evidence/thoth/backfill", json!(null)).await;
    assert_eq!(api.get("/acme/thoth/governance/evidence-slos?window_hours=48").await.1["passed"], true);

    let (_, feed) = api.get("/acme/thoth/governance/feed?decision=block").await;
    assert_eq!((&feed["total"], &feed["sort_by"], &feed["sort_dir"]), (&json!(1), &json!("timestamp"), &json!("desc")));
    assert!(data(&feed)[0]["evidence_id"].is_string());
    let (_, tools) = api.get("/acme/thoth/governance/tools").await;
    assert_eq!((&tools["total"], &tools["limit"]), (&json!(2), &json!(50)));

    let (_, latest) = api.get("/acme/thoth/reports/latest?cadence=30d").await;
    assert_eq!((&latest["status"], &latest["cadence"]), (&json!("COMPLETED"), &json!("30d")));
    let report_id = str_of(&latest, "report_id");
    assert_eq!(api.get(&format!("/acme/thoth/reports/{report_id}")).await.1, latest);
    assert_eq!(api.get("/acme/thoth/reports").await.1["total"], 2);
    assert_error(&api.get("/acme/thoth/reports/latest?status=PENDING").await, StatusCode::NOT_FOUND, "not_found");
    let (_, cost) = api.get("/acme/thoth/reports/cost?days=7&rate=0.5").await;
    assert_eq!((&cost["pricing_evidence"]["unresolved_models"], &cost["rate"]), (&json!([]), &json!(0.5)));
    for path in ["/acme/thoth/reports/day7", "/acme/thoth/reports/overview", "/acme/thoth/reports/executive-summary"] {
        assert_eq!(api.get(path).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(api.get("/acme/thoth/reports/board-incident/vio-7").await.1["agents"], json!(["ops"]));
    assert_error(&api.get("/acme/thoth/reports/board-incident/vio-0").await, StatusCode::NOT_FOUND, "not_found");
    let (_, forensics) = api.get("/acme/thoth/agents/ops/forensics/latest").await;
    assert_eq!((&forensics["risk_score"], &forensics["events"].as_array().map(Vec::len)), (&json!(10), &Some(2)));
    assert_error(&api.get("/acme/thoth/sessions/s1/forensics").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.get("/acme/thoth/sessions/s1/evidence-bundle").await, StatusCode::NOT_FOUND, "not_found");
    let (_, export) = api.get("/acme/thoth/governance/decision-metadata/export?limit=10").await;
    assert_eq!((&export["record_count"], &export["approval_count"]), (&json!(2), &json!(1)));
    emulator.shutdown().await;
}

#[tokio::test]
async fn new_areas_survive_a_restart() {
    let dir = TempDir::new("restart-more");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let (_, fleet) = api.post("/acme/thoth/fleets", json!({"name": "Servers"})).await;
    let (_, vendor) = api
        .post(
            "/acme/thoth/mcp/vendors",
            json!({"vendor_id": "v", "display_name": "V", "host_patterns": ["v.example.com"]}),
        )
        .await;
    api.put("/acme/billing/overage-cap", json!({"overage_cap_usd": 10})).await;
    emulator.shutdown().await;

    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    assert_eq!(api.get(&format!("/acme/thoth/fleets/{}", str_of(&fleet, "fleet_id"))).await.1, fleet);
    assert_eq!(api.get("/acme/thoth/mcp/vendors/v").await.1, vendor);
    assert_eq!(api.get("/acme/billing/pricing").await.1["pilot_package"]["overage_cap_usd"], 10.0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let dir = TempDir::new("fault-latency");
    let emulator = start_with(dir.path(), Faults { latency_ms: 150, ..Faults::default() }).await;
    let api = Api::new(&emulator);
    let started = Instant::now();
    assert_eq!(api.get("/acme/thoth/fleets").await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    emulator.shutdown().await;
}

/// The statuses of `n` sequential fleet lists.
async fn statuses(api: &Api, n: usize) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(api.get("/acme/thoth/fleets").await.0);
    }
    out
}

#[tokio::test]
async fn errors_do_no_work_and_repeat_with_the_same_seed() {
    let dir = TempDir::new("fault-errors");
    let always = start_with(dir.path(), Faults { error_rate: 1.0, ..Faults::default() }).await;
    let api = Api::new(&always);
    let failed = api.post("/acme/thoth/fleets", json!({"name": "never"})).await;
    assert_error(&failed, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    // Emulator-only routes are never faulted, so tests can always seed data.
    assert_eq!(api.post("/acme/_emulator/approvals", json!({})).await.0, StatusCode::CREATED);
    always.shutdown().await;
    let clean = start(dir.path()).await;
    assert!(data(&Api::new(&clean).get("/acme/thoth/fleets").await.1).is_empty(), "the failed create did nothing");
    clean.shutdown().await;

    let faults = Faults { error_rate: 0.5, seed: 7, ..Faults::default() };
    let first = start_with(dir.path(), faults.clone()).await;
    let run = statuses(&Api::new(&first), 16).await;
    first.shutdown().await;
    let second = start_with(dir.path(), faults).await;
    assert_eq!(statuses(&Api::new(&second), 16).await, run, "the same seed meets the same faults");
    second.shutdown().await;
    assert!(run.contains(&StatusCode::OK) && run.contains(&StatusCode::SERVICE_UNAVAILABLE), "{run:?}");
}

#[tokio::test]
async fn ambiguous_failures_do_the_work_then_fail_or_drop_the_connection() {
    let dir = TempDir::new("fault-ambiguous");
    let emulator = start_with(dir.path(), Faults { ambiguous_rate: 1.0, seed: 3, ..Faults::default() }).await;
    let api = Api::new(&emulator);
    let (mut errors, mut drops) = (0, 0);
    for n in 0..8 {
        let request = api
            .client
            .post(format!("{}/acme/thoth/fleets", api.base))
            .header("X-Api-Key", KEY)
            .json(&json!({"name": format!("fleet-{n}")}));
        match request.send().await {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
                errors += 1;
            }
            Err(_) => drops += 1,
        }
    }
    emulator.shutdown().await;
    assert!(errors > 0 && drops > 0, "{errors} errors, {drops} drops");
    let clean = start(dir.path()).await;
    assert_eq!(data(&Api::new(&clean).get("/acme/thoth/fleets").await.1).len(), 8, "every create was carried out");
    clean.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let dir = TempDir::new("fault-throttle");
    let emulator = start_with(dir.path(), Faults { throttle_rps: Some(2), ..Faults::default() }).await;
    let api = Api::new(&emulator);
    let mut throttled = 0;
    for n in 0..6 {
        let response = api
            .client
            .get(format!("{}/acme/thoth/fleets", api.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
            .expect("an answer");
        if n == 0 {
            assert_eq!(response.status(), StatusCode::OK, "the first request of a window is always served");
        }
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
            let body: Value = response.json().await.expect("a JSON body");
            assert_eq!(body["error"], "rate_limited");
        }
    }
    assert!(throttled > 0, "six requests in at most two windows exceed two per second");
    // Unauthenticated requests are refused before any fault.
    let stranger = send(api.client.get(format!("{}/acme/thoth/fleets", api.base))).await;
    assert_error(&stranger, StatusCode::UNAUTHORIZED, "unauthorized");
    emulator.shutdown().await;
}

#[tokio::test]
async fn invalid_faults_are_refused_at_start() {
    let dir = TempDir::new("fault-invalid");
    for faults in [
        Faults { error_rate: 2.0, ..Faults::default() },
        Faults { ambiguous_rate: -0.1, ..Faults::default() },
        Faults { throttle_rps: Some(0), ..Faults::default() },
    ] {
        let error = Emulator::start(EmulatorConfig { faults, ..config(dir.path()) }, "127.0.0.1:0")
            .await
            .expect_err("invalid faults are an error");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}
