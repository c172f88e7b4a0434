//! What goes over the wire, seen by a recording HTTP server: headers, paths, retries of
//! idempotent calls only, and error bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use crate::support::{copy_dir, repo_path, thoth, TempDir, KEY};

/// A server answering one canned response per connection, in order, that returns the raw
/// requests it received.
struct Recorder {
    url: String,
    handle: JoinHandle<Vec<String>>,
}

impl Recorder {
    fn start(responses: Vec<(u16, &'static str)>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in responses {
                let Ok((mut stream, _)) = listener.accept() else { break };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body_in = vec![0; length];
                let _ = reader.read_exact(&mut body_in);
                head.push_str(&String::from_utf8_lossy(&body_in));
                seen.push(head);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
            seen
        });
        Recorder { url, handle }
    }

    fn requests(self) -> Vec<String> {
        self.handle.join().expect("recorder thread")
    }
}

fn config(fixture: &str) -> TempDir {
    let dir = TempDir::new("transport");
    copy_dir(&repo_path(&format!("tests/fixtures/tenants/{fixture}")), dir.path());
    dir
}

#[test]
fn requests_carry_auth_provenance_and_the_contract_paths_and_are_retried_when_idempotent() {
    let dir = config("transport");
    let server = Recorder::start(vec![(503, r#"{"error":"unavailable","message":"try again"}"#), (200, "{}")]);
    let run = thoth(
        dir.path(),
        &["plan"],
        &[("THOTH_TENANT_ID", "acme"), ("THOTH_API_KEY", KEY), ("THOTH_API_BASE_URL", server.url.as_str())],
    );
    let requests = server.requests();
    run.expect_code(0);
    assert!(run.stdout.contains("thoth_governance_settings.baseline will be created"), "{}", run.stdout);
    assert_eq!(requests.len(), 2, "one retry after the 503: {requests:#?}");
    for r in &requests {
        let lower = r.to_ascii_lowercase();
        assert!(r.starts_with("GET /acme/thoth/settings HTTP/1.1\r\n"), "{r}");
        assert!(lower.contains(&format!("x-api-key: {}\r\n", KEY.to_ascii_lowercase())), "{r}");
        assert!(!lower.contains("authorization:"), "never both credentials: {r}");
        assert!(lower.contains(&format!("user-agent: thoth/{}\r\n", env!("CARGO_PKG_VERSION"))), "{r}");
        assert!(lower.contains("x-aten-provisioned-via: thoth\r\n"), "{r}");
        assert!(lower.contains("x-aten-provisioner: thoth\r\n"), "{r}");
        assert!(lower.contains("accept: application/json\r\n"), "{r}");
    }
}

#[test]
fn a_bearer_token_from_a_file_is_sent_as_authorization() {
    let dir = config("transport");
    std::fs::write(dir.path().join("token"), "  admin-session-token\n").expect("token file");
    let server = Recorder::start(vec![(200, "{}")]);
    let run = thoth(
        dir.path(),
        &["plan", "--admin-token-file", "token", "--api-base-url", server.url.as_str(), "--tenant-id", "acme"],
        &[("THOTH_API_KEY", "ignored-because-a-flag-wins")],
    );
    let requests = server.requests();
    run.expect_code(0);
    assert!(requests[0].contains("authorization: Bearer admin-session-token\r\n"), "{}", requests[0]);
    assert!(!requests[0].to_ascii_lowercase().contains("x-api-key"), "{}", requests[0]);
}

fn bundle_config() -> TempDir {
    let dir = TempDir::new("transport-create");
    std::fs::write(
        dir.path().join("main.tf"),
        "provider \"thoth\" {\n  retry_base_delay_ms = 50\n}\n\nresource \"thoth_policy_bundle\" \"b\" {\n  name = \"b\"\n  framework = \"OPA\"\n  raw_policy = \"package b\"\n}\n",
    )
    .expect("config");
    dir
}

fn apply(dir: &TempDir, server: &Recorder) -> crate::support::Run {
    thoth(
        dir.path(),
        &["apply", "--auto-approve"],
        &[("THOTH_TENANT_ID", "acme"), ("THOTH_API_KEY", KEY), ("THOTH_API_BASE_URL", server.url.as_str())],
    )
}

const CREATED: &str = r#"{"id":"bnd_1","name":"b","framework":"OPA","raw_policy":"package b","version":1,"status":"active","enforcement_mode":"enforce","assignments":["all"]}"#;

#[test]
fn a_rejected_create_is_not_retried_and_shows_the_contract_error_body() {
    let dir = bundle_config();
    let server = Recorder::start(vec![(400, r#"{"error":"invalid_request","message":"OPA policy does not parse"}"#)]);
    let run = apply(&dir, &server);
    let requests = server.requests();
    run.expect_code(1);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(requests[0].starts_with("POST /acme/thoth/policy-bundles HTTP/1.1"), "{}", requests[0]);
    assert!(requests[0].contains(r#""framework":"OPA""#), "{}", requests[0]);
    assert!(
        run.stdout.contains(
            "thoth_policy_bundle.b: failed: POST /acme/thoth/policy-bundles failed with HTTP 400 (invalid_request): OPA policy does not parse"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Apply incomplete"), "{}", run.stdout);
    let state = std::fs::read_to_string(dir.path().join("thoth.state.json")).unwrap_or_default();
    assert!(!state.contains("thoth_policy_bundle.b"), "nothing is recorded for a failed create");
}

#[test]
fn an_ambiguous_create_is_looked_up_before_it_is_tried_again() {
    // The first create fails with a server error and is not there: it is sent again.
    let dir = bundle_config();
    let server = Recorder::start(vec![
        (503, r#"{"error":"unavailable","message":"busy"}"#),
        (200, r#"{"data":[]}"#),
        (201, CREATED),
    ]);
    let run = apply(&dir, &server);
    let requests = server.requests();
    run.expect_code(0);
    let lines: Vec<&str> = requests.iter().filter_map(|r| r.lines().next()).collect();
    assert_eq!(
        lines,
        [
            "POST /acme/thoth/policy-bundles HTTP/1.1",
            "GET /acme/thoth/policy-bundles HTTP/1.1",
            "POST /acme/thoth/policy-bundles HTTP/1.1"
        ]
    );
}

#[test]
fn an_ambiguous_create_that_took_effect_is_adopted_not_repeated() {
    // The create was carried out but answered 500: the lookup finds it, nothing is sent again.
    let dir = bundle_config();
    let listed = format!(r#"{{"data":[{CREATED}],"total":1}}"#);
    let listed: &'static str = Box::leak(listed.into_boxed_str());
    let server = Recorder::start(vec![(500, r#"{"error":"internal","message":"oops"}"#), (200, listed)]);
    let run = apply(&dir, &server);
    let requests = server.requests();
    run.expect_code(0);
    assert_eq!(requests.iter().filter(|r| r.starts_with("POST")).count(), 1, "{requests:#?}");
    let state = std::fs::read_to_string(dir.path().join("thoth.state.json")).expect("state");
    assert!(state.contains("\"id\": \"bnd_1\""), "{state}");
}
