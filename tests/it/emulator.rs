//! The GovAPI emulator over real HTTP: authentication, the error shape, each area's contract,
//! and durability across restarts.

use std::fs;
use std::path::Path;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thoth::emulator::{Emulator, EmulatorConfig, Faults};

use crate::support::TempDir;

pub(crate) const KEY: &str = "thoth_org_emulator_test";

pub(crate) fn config(dir: &Path) -> EmulatorConfig {
    EmulatorConfig { data_dir: dir.to_path_buf(), api_keys: vec![KEY.to_owned()], faults: Faults::default() }
}

pub(crate) async fn start(dir: &Path) -> Emulator {
    Emulator::start(config(dir), "127.0.0.1:0").await.expect("the emulator starts")
}

/// A client authenticated with `X-Api-Key`, speaking to one tenant.
pub(crate) struct Api {
    pub(crate) client: Client,
    pub(crate) base: String,
}

impl Api {
    pub(crate) fn new(emulator: &Emulator) -> Api {
        Api { client: Client::builder().build().expect("an HTTP client"), base: emulator.base_url() }
    }

    /// Sends a request to `path` (which starts with `/`) and returns the status and JSON body
    /// (`null` when the body is empty).
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).header("X-Api-Key", KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON body, got {text:?}: {e}"))
    };
    (status, body)
}

/// Asserts the GovAPI error shape with the given status and code.
pub(crate) fn assert_error(actual: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(actual.0, status, "body: {}", actual.1);
    assert_eq!(actual.1["error"], code, "body: {}", actual.1);
    assert!(actual.1["message"].is_string(), "body: {}", actual.1);
}

/// The `data` array of a list response.
pub(crate) fn data(body: &Value) -> &Vec<Value> {
    body["data"].as_array().expect("a `data` array")
}

/// Whether any file under `dir` contains `needle`.
/// Whether the data directory keeps `secret`, as a digest and never as itself.
fn at_rest_digest(secret: &str) -> String {
    use sha2::Digest as _;
    crate::support::hex(&sha2::Sha256::digest(format!("thoth emulator\0{secret}").as_bytes()))
}

fn kept_at_rest(dir: &Path, secret: &str) -> bool {
    files_contain(dir, &at_rest_digest(secret)) && !files_contain(dir, secret)
}

/// Every row body the emulator's database holds now, read once the emulator has stopped.
/// Unlike the files' bytes, this leaves out what SQLite keeps of earlier versions of a row.
pub(crate) fn stored_rows(dir: &Path) -> String {
    let db = rusqlite::Connection::open(dir.join("emulator.sqlite3")).expect("the emulator database");
    db.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
    let mut query = db.prepare("SELECT body FROM rows ORDER BY tenant, area, key").expect("query");
    let bodies = query.query_map([], |row| row.get::<_, String>(0)).expect("rows");
    bodies.map(|body| body.expect("a row")).collect::<Vec<_>>().join("\n")
}

pub(crate) fn files_contain(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            files_contain(&path, needle)
        } else {
            // The database is binary; its text values are stored as UTF-8 bytes.
            fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }
    })
}

pub(crate) fn is_timestamp(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let b = text.as_bytes();
    b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z'
}

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthorized() {
    let dir = TempDir::new("auth");
    let emulator = start(dir.path()).await;
    let url = format!("{}/acme/thoth/settings", emulator.base_url());
    let client = Client::new();

    let missing = send(client.get(&url)).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = send(client.get(&url).header("X-Api-Key", "thoth_org_wrong")).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong_bearer = send(client.get(&url).bearer_auth("nope")).await;
    assert_error(&wrong_bearer, StatusCode::UNAUTHORIZED, "unauthorized");
    // Unknown routes are not revealed to strangers either.
    let unknown = send(client.get(format!("{}/acme/thoth/nothing", emulator.base_url()))).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "unauthorized");

    let with_key = send(client.get(&url).header("X-Api-Key", KEY)).await;
    assert_eq!(with_key.0, StatusCode::OK);
    let with_bearer = send(client.get(&url).bearer_auth(KEY)).await;
    assert_eq!(with_bearer.0, StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn errors_use_the_json_shape() {
    let dir = TempDir::new("errors");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let wrong_method = api.delete("/acme/thoth/settings").await;
    assert_eq!(wrong_method.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.1, json!({"error": "method_not_allowed", "message": "Method Not Allowed"}));
    assert_error(&api.get("/acme/thoth/no-such-thing").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.get("/acme").await, StatusCode::NOT_FOUND, "not_found");

    let bad_json = send(
        api.client
            .put(format!("{}/acme/thoth/settings", api.base))
            .header("X-Api-Key", KEY)
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_error(&bad_json, StatusCode::BAD_REQUEST, "invalid_request");
    let not_an_object = api.put("/acme/thoth/settings", json!([1, 2])).await;
    assert_error(&not_an_object, StatusCode::BAD_REQUEST, "invalid_request");
    let form = send(
        api.client
            .post(format!("{}/acme/thoth/mdm/providers", api.base))
            .header("X-Api-Key", KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("provider=jamf"),
    )
    .await;
    assert_error(&form, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // A JSON body without a `Content-Type` header is accepted.
    let bare = send(
        api.client
            .post(format!("{}/acme/thoth/mdm/providers", api.base))
            .header("X-Api-Key", KEY)
            .body(r#"{"provider":"jamf"}"#),
    )
    .await;
    assert_eq!(bare.0, StatusCode::OK, "body: {}", bare.1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn settings_round_trip_without_echoing_secrets() {
    let dir = TempDir::new("settings");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let secret = "whsec_do_not_echo_7f3a";

    let (status, fresh) = api.get("/acme/thoth/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh.as_object().map(serde_json::Map::len), Some(1), "{fresh}");
    assert!(is_timestamp(&fresh["updated_at"]), "{fresh}");

    let document = json!({
        "compliance_profile": "soc2",
        "enforceMcpPolicies": true,
        "webhook": {"enabled": true, "url": "https://hooks.example.com/thoth", "secret": secret},
        "pam": {"enabled": true, "callback_secret": "pam_cb_secret_81c2", "request_url": "https://pam.example.com"},
    });
    let (status, written) = api.put("/acme/thoth/settings", document).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!written.to_string().contains(secret), "{written}");
    assert!(!written.to_string().contains("pam_cb_secret_81c2"), "{written}");
    assert_eq!(written["enforceMcpPolicies"], true);
    assert_eq!(written["webhook"], json!({"enabled": true, "url": "https://hooks.example.com/thoth"}));
    assert!(is_timestamp(&written["updated_at"]), "{written}");

    // Read-modify-write of what GET returns keeps the secrets it cannot see.
    let (_, mut read) = api.get("/acme/thoth/settings").await;
    assert_eq!(read, written);
    read["compliance_profile"] = json!("healthcare");
    let (status, rewritten) = api.put("/acme/thoth/settings", read).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rewritten["compliance_profile"], "healthcare");
    assert!(!rewritten.to_string().contains(secret));
    assert!(kept_at_rest(dir.path(), secret), "the secret is retained, as a digest");
    assert!(kept_at_rest(dir.path(), "pam_cb_secret_81c2"));

    // `null` clears a secret.
    let (_, mut read) = api.get("/acme/thoth/settings").await;
    read["webhook"]["secret"] = Value::Null;
    assert_eq!(api.put("/acme/thoth/settings", read).await.0, StatusCode::OK);
    assert!(!files_contain(dir.path(), secret));
    assert!(kept_at_rest(dir.path(), "pam_cb_secret_81c2"));

    let wrong_type = api.put("/acme/thoth/settings", json!({"webhook": {"secret": 42}})).await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
    // The cleared secret's digest is gone from the stored rows; the other one is kept.
    let rows = stored_rows(dir.path());
    assert!(!rows.contains(&at_rest_digest(secret)), "the secret is cleared");
    assert!(rows.contains(&at_rest_digest("pam_cb_secret_81c2")));
}

#[tokio::test]
async fn webhook_test_needs_an_enabled_webhook_with_a_url() {
    let dir = TempDir::new("webhook");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let unconfigured = api.post("/acme/thoth/settings/webhook/test", json!({})).await;
    assert_eq!(unconfigured.0, StatusCode::CONFLICT);
    assert_eq!(
        unconfigured.1,
        json!({"error": "webhook_not_configured", "message": "webhook is not enabled or the url is not set"})
    );
    let settings = json!({"webhook": {"enabled": true, "url": "https://hooks.example.com/x"}});
    assert_eq!(api.put("/acme/thoth/settings", settings).await.0, StatusCode::OK);
    let (status, delivered) = api.post("/acme/thoth/settings/webhook/test", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["http_status"], 200);
    assert!(is_timestamp(&delivered["tested_at"]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn mdm_providers_upsert_idempotently_and_soft_delete() {
    let dir = TempDir::new("mdm");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({
        "provider": "jamf",
        "name": "Jamf Pro",
        "enabled": true,
        "config": {"base_url": "https://jamf.example.com", "client_secret": "jamf_secret_55"},
    });

    let (status, first) = api.post("/acme/thoth/mdm/providers", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, second) = api.post("/acme/thoth/mdm/providers", body).await;
    for row in [&first, &second] {
        assert_eq!(row["provider"], "jamf");
        assert_eq!(row["name"], "Jamf Pro");
        assert_eq!(row["status"], "connected");
        assert_eq!(row["synced_endpoints"], 0);
        assert!(row.get("config").is_none(), "config is never returned: {row}");
    }
    assert_eq!(first["created_at"], second["created_at"]);
    // The operator's body shape is accepted too.
    let operator = json!({"provider": "kandji", "endpoint_url": "https://k.example.com", "api_key": "kandji_key_9"});
    let (status, kandji) = api.post("/acme/thoth/mdm/providers", operator).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!kandji.to_string().contains("kandji_key_9"));

    let (_, listed) = api.get("/acme/thoth/mdm/providers").await;
    let providers: Vec<&Value> = data(&listed).iter().map(|row| &row["provider"]).collect();
    assert_eq!(providers, [&json!("jamf"), &json!("kandji")]);
    assert!(!listed.to_string().contains("jamf_secret_55"));

    // Soft delete: the row stays listed, disabled; the name and config are kept.
    let (_, disabled) = api.post("/acme/thoth/mdm/providers", json!({"provider": "jamf", "enabled": false})).await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["name"], "Jamf Pro");
    let (_, listed) = api.get("/acme/thoth/mdm/providers").await;
    assert_eq!(data(&listed).len(), 2);
    assert_eq!(data(&listed)[0]["enabled"], false);
    assert!(kept_at_rest(dir.path(), "jamf_secret_55"), "config is kept, as digests");

    let missing = api.post("/acme/thoth/mdm/providers", json!({"name": "x"})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    let blank = api.post("/acme/thoth/mdm/providers", json!({"provider": " "})).await;
    assert_error(&blank, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn mdm_sync_jobs_advance_on_each_read() {
    let dir = TempDir::new("mdm-sync");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    let unknown = api.post("/acme/thoth/mdm/providers/jamf/sync", json!({})).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    api.post("/acme/thoth/mdm/providers", json!({"provider": "jamf"})).await;
    let (status, job) = api.post("/acme/thoth/mdm/providers/jamf/sync", json!({})).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["provider"], "jamf");
    let job_id = job["job_id"].as_str().expect("a job id").to_owned();
    assert!(job_id.starts_with("job_"), "{job_id}");

    let path = format!("/acme/thoth/mdm/sync-jobs/{job_id}");
    let statuses = [
        api.get(&path).await.1["status"].clone(),
        api.get(&path).await.1["status"].clone(),
        api.get(&path).await.1["status"].clone(),
    ];
    assert_eq!(statuses, [json!("running"), json!("succeeded"), json!("succeeded")]);
    let (_, done) = api.get(&path).await;
    assert!(is_timestamp(&done["started_at"]) && is_timestamp(&done["completed_at"]));
    let (_, listed) = api.get("/acme/thoth/mdm/providers").await;
    assert_eq!(data(&listed)[0]["last_sync_job_id"], job_id.as_str());
    assert_eq!(data(&listed)[0]["last_sync_status"], "succeeded");

    assert_error(&api.get("/acme/thoth/mdm/sync-jobs/job_missing").await, StatusCode::NOT_FOUND, "not_found");
    emulator.shutdown().await;
}

#[tokio::test]
async fn browser_providers_upsert_and_keep_config_write_only() {
    let dir = TempDir::new("browser-providers");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({"provider": "chrome", "name": "Chrome Enterprise", "config": {"customer_id": "C0123"}});

    let (status, first) = api.post("/acme/thoth/browser/providers", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, second) = api.post("/acme/thoth/browser/providers", body).await;
    // `config` is write-only: never returned, kept as digests; no status is invented.
    assert!(first.get("config").is_none() && first.get("status").is_none(), "{first}");
    assert!(kept_at_rest(dir.path(), "C0123"));
    assert_eq!(first["enabled"], true);
    assert_eq!(first["created_at"], second["created_at"]);

    // Without `config`, the stored one is kept; soft delete keeps the row listed.
    let (_, disabled) =
        api.post("/acme/thoth/browser/providers", json!({"provider": "chrome", "enabled": false})).await;
    assert!(disabled.get("config").is_none());
    assert!(kept_at_rest(dir.path(), "C0123"), "the stored config is kept");
    let (_, listed) = api.get("/acme/thoth/browser/providers").await;
    assert_eq!(data(&listed).len(), 1);
    assert_eq!(data(&listed)[0]["enabled"], false);

    let bad_status =
        api.post("/acme/thoth/browser/providers", json!({"provider": "chrome", "status": "on fire"})).await;
    assert_error(&bad_status, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn browser_policies_version_on_content_change() {
    let dir = TempDir::new("browser-policies");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({
        "name": "block-uploads",
        "provider": "chrome",
        "policy": {"block_uploads": true},
        "enforcement_mode": "enforce",
    });

    let (status, created) = api.post("/acme/thoth/browser/policies", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let policy_id = created["policy_id"].as_str().expect("a generated id").to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["active"], true);
    assert!(created["compiled_policy"].is_object());

    let mut update = body.clone();
    update["policy_id"] = json!(policy_id);
    let (_, same) = api.post("/acme/thoth/browser/policies", update.clone()).await;
    assert_eq!(same["version"], 1, "no content change, no new version");
    update["policy"] = json!({"block_uploads": false});
    let (_, changed) = api.post("/acme/thoth/browser/policies", update.clone()).await;
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["policy_id"], policy_id.as_str());

    let mut firefox = body.clone();
    firefox["provider"] = json!("firefox");
    api.post("/acme/thoth/browser/policies", firefox).await;
    let (_, all) = api.get("/acme/thoth/browser/policies").await;
    assert_eq!(data(&all).len(), 2);
    let (_, chrome) = api.get("/acme/thoth/browser/policies?provider=chrome").await;
    assert_eq!(data(&chrome).len(), 1);
    assert_eq!(data(&chrome)[0]["policy_id"], policy_id.as_str());

    // Soft delete keeps the row listed.
    update["active"] = json!(false);
    api.post("/acme/thoth/browser/policies", update).await;
    let (_, chrome) = api.get("/acme/thoth/browser/policies?provider=chrome").await;
    assert_eq!(data(&chrome)[0]["active"], false);

    for bad in [
        json!({"provider": "chrome", "policy": {}}),
        json!({"name": "x", "provider": "chrome"}),
        json!({"name": "x", "provider": "chrome", "policy": "text"}),
        json!({"name": "x", "provider": "chrome", "policy": {}, "enforcement_mode": "block"}),
    ] {
        let answer = api.post("/acme/thoth/browser/policies", bad).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn browser_enrollments_upsert_and_filter() {
    let dir = TempDir::new("browser-enrollments");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let body = json!({"provider": "chrome", "user_id": "u1", "device_id": "d1", "status": "pending"});

    let (status, created) = api.post("/acme/thoth/browser/enrollments", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let id = created["enrollment_id"].as_str().expect("a generated id").to_owned();
    let (_, other) = api.post("/acme/thoth/browser/enrollments", body.clone()).await;
    assert_ne!(other["enrollment_id"], id.as_str(), "no id means a new row");

    let mut update = body;
    update["enrollment_id"] = json!(id);
    update["status"] = json!("disabled");
    update["last_seen_at"] = json!("2026-11-28T17:42:00Z");
    let (_, updated) = api.post("/acme/thoth/browser/enrollments", update).await;
    assert_eq!(updated["status"], "disabled");
    assert_eq!(updated["created_at"], created["created_at"]);

    let (_, disabled) = api.get("/acme/thoth/browser/enrollments?provider=chrome&status=disabled").await;
    assert_eq!(data(&disabled).len(), 1);
    assert_eq!(data(&disabled)[0]["enrollment_id"], id.as_str());
    let (_, firefox) = api.get("/acme/thoth/browser/enrollments?provider=firefox").await;
    assert!(data(&firefox).is_empty());

    let missing = api.post("/acme/thoth/browser/enrollments", json!({"provider": "chrome", "user_id": "u1"})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    emulator.shutdown().await;
}

#[tokio::test]
async fn policy_bundles_are_versioned_per_name() {
    let dir = TempDir::new("bundles");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let rego = "package thoth\ndefault allow = false\n";
    let body = json!({"name": "baseline", "framework": "OPA", "raw_policy": rego, "assignments": null});

    let (status, v1) = api.post("/acme/thoth/policy-bundles", body.clone()).await;
    assert!(status.is_success(), "{status}: {v1}");
    let (_, v2) = api.post("/acme/thoth/policy-bundles", body).await;
    let (_, other) = api
        .post(
            "/acme/thoth/policy-bundles",
            json!({"name": "cedar-rules", "framework": "CEDAR", "raw_policy": "permit(principal, action, resource);", "assignments": ["agent:ops"], "enforcement_mode": "observe"}),
        )
        .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v2["version"], 2);
    assert_eq!(other["version"], 1);
    assert_ne!(v1["id"], v2["id"]);
    assert_eq!(v1["assignments"], json!(["all"]));
    assert_eq!((&v1["status"], &v1["enforcement_mode"]), (&json!("active"), &json!("enforce")));
    assert_eq!((&other["status"], &other["enforcement_mode"]), (&json!("staged"), &json!("observe")));
    assert_eq!(v1["raw_policy"], rego);
    let expected_hash = format!("{:x}", Sha256::digest(format!("OPA\n{rego}").as_bytes()));
    assert_eq!(v1["policy_hash"], expected_hash.as_str());

    let v1_id = v1["id"].as_str().expect("an id");
    let (status, fetched) = api.get(&format!("/acme/thoth/policy-bundles/{v1_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, v1);

    let (_, listed) = api.get("/acme/thoth/policy-bundles").await;
    assert_eq!(listed["total"], 3);
    let order: Vec<(&Value, &Value)> = data(&listed).iter().map(|r| (&r["name"], &r["version"])).collect();
    assert_eq!(
        order,
        [(&json!("baseline"), &json!(1)), (&json!("baseline"), &json!(2)), (&json!("cedar-rules"), &json!(1))]
    );
    let (_, cedar) = api.get("/acme/thoth/policy-bundles?framework=CEDAR").await;
    assert_eq!(cedar["total"], 1);
    let (_, ops) = api.get("/acme/thoth/policy-bundles?assignment=agent:ops").await;
    assert_eq!(ops["total"], 1);
    let (_, effective) = api.get("/acme/thoth/policy-bundles/effective?agent_id=ops").await;
    assert_eq!(effective["agent_id"], "ops");
    assert_eq!(effective["total"], 2, "the staged cedar bundle is not effective");

    let (status, _) = api.delete(&format!("/acme/thoth/policy-bundles/{v1_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(&api.get(&format!("/acme/thoth/policy-bundles/{v1_id}")).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.delete(&format!("/acme/thoth/policy-bundles/{v1_id}")).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.delete("/acme/thoth/policy-bundles/bnd_unknown").await, StatusCode::NOT_FOUND, "not_found");

    for bad in [
        json!({"name": "x", "framework": "opa", "raw_policy": "p"}),
        json!({"name": "x", "framework": "OPA"}),
        json!({"name": "x", "framework": "OPA", "raw_policy": "p", "source_uri": "s3://b/k"}),
        json!({"name": "x", "framework": "OPA", "source_uri": "https://example.com/p.rego"}),
        json!({"framework": "OPA", "raw_policy": "p"}),
        json!({"name": "x", "framework": "OPA", "raw_policy": "p", "status": "sleeping"}),
    ] {
        let answer = api.post("/acme/thoth/policy-bundles", bad).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn tenants_are_separate() {
    let dir = TempDir::new("tenants");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);

    api.post("/acme/thoth/browser/providers", json!({"provider": "chrome"})).await;
    let (_, other) = api.get("/globex/thoth/browser/providers").await;
    assert!(data(&other).is_empty());
    let (_, acme) = api.get("/acme/thoth/browser/providers").await;
    assert_eq!(data(&acme).len(), 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = TempDir::new("restart");
    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    let settings = json!({"compliance_profile": "financial", "webhook": {"enabled": true, "url": "https://h.example.com", "secret": "s3cr3t_restart"}});
    let (_, written) = api.put("/acme/thoth/settings", settings).await;
    let bundle = json!({"name": "baseline", "framework": "OPA", "raw_policy": "package p"});
    let (_, v1) = api.post("/acme/thoth/policy-bundles", bundle.clone()).await;
    api.post("/weird tenant/thoth/mdm/providers", json!({"provider": "intune"})).await;
    emulator.shutdown().await;

    let emulator = start(dir.path()).await;
    let api = Api::new(&emulator);
    assert_eq!(api.get("/acme/thoth/settings").await.1, written);
    let v1_id = v1["id"].as_str().expect("an id");
    assert_eq!(api.get(&format!("/acme/thoth/policy-bundles/{v1_id}")).await.1, v1);
    let (_, v2) = api.post("/acme/thoth/policy-bundles", bundle).await;
    assert_eq!(v2["version"], 2);
    let (_, weird) = api.get("/weird%20tenant/thoth/mdm/providers").await;
    assert_eq!(data(&weird)[0]["provider"], "intune");
    // The secret survived too: the webhook is still fully configured.
    assert!(kept_at_rest(dir.path(), "s3cr3t_restart"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn start_fails_on_bad_configuration_or_data() {
    let dir = TempDir::new("corrupt");
    let tenants = dir.path().join("tenants");
    fs::create_dir_all(&tenants).expect("a data directory");
    fs::write(tenants.join("acme.json"), "{ this is not json").expect("a corrupt file");
    let corrupt = Emulator::start(config(dir.path()), "127.0.0.1:0").await;
    assert!(corrupt.is_err(), "a corrupt data file is an error");

    let file_dir = TempDir::new("file-as-dir");
    let plain_file = file_dir.path().join("data");
    fs::write(&plain_file, "not a directory").expect("a plain file");
    let unusable = Emulator::start(config(&plain_file), "127.0.0.1:0").await;
    assert!(unusable.is_err(), "a data dir that is a file is an error");

    let empty = TempDir::new("no-keys");
    let no_keys = EmulatorConfig { api_keys: vec![], ..config(empty.path()) };
    let error = Emulator::start(no_keys, "127.0.0.1:0").await.expect_err("no API key is an error");
    assert!(error.to_string().contains("at least one API key"), "{error}");
}
