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
        Recorder::raw(
            responses
                .into_iter()
                .map(|(status, body)| {
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                })
                .collect(),
        )
    }

    /// Answers each connection with the next reply as it is written, then closes it.
    fn raw(replies: Vec<String>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for reply in replies {
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

/// A listener nothing should connect to; `untouched` says whether nothing did.
struct Bystander(TcpListener);

impl Bystander {
    fn new() -> Bystander {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Bystander(listener)
    }

    fn addr(&self) -> String {
        self.0.local_addr().expect("addr").to_string()
    }

    fn untouched(&self) -> bool {
        matches!(self.0.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

fn plan_against(dir: &TempDir, url: &str, extra: &[(&str, &str)]) -> crate::support::Run {
    let mut env = vec![("THOTH_TENANT_ID", "acme"), ("THOTH_API_KEY", KEY), ("THOTH_API_BASE_URL", url)];
    env.extend_from_slice(extra);
    thoth(dir.path(), &["plan"], &env)
}

#[test]
fn a_plan_reads_the_tenant_once_while_it_checks_and_reports_the_configuration_first() {
    // A plan reads the tenant while its configuration is checked: once, as a saved plan does
    // after checking.
    let dir = config("transport");
    for extra in [&[][..], &["--out", "saved.plan"][..]] {
        let server = Recorder::start(vec![(200, "{}")]);
        let mut args = vec!["plan", "--api-base-url", server.url.as_str(), "--tenant-id", "acme"];
        args.extend_from_slice(extra);
        let run = thoth(dir.path(), &args, &[("THOTH_API_KEY", KEY)]);
        let requests = server.requests();
        run.expect_code(0);
        assert!(run.stdout.contains("thoth_governance_settings.baseline will be created"), "{}", run.stdout);
        assert_eq!(requests.len(), 1, "{extra:?}: {requests:#?}");
    }
    // A configuration that does not check is what is reported, not that the tenant it was
    // being read from alongside does not answer.
    std::fs::write(dir.path().join("broken.tf"), "resource \"thoth_fleet\" \"f\" {\n  name = local.missing\n}\n")
        .expect("config");
    let gone = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let run = plan_against(&dir, &format!("http://{gone}"), &[]);
    run.expect_code(1);
    assert!(run.stderr.contains("local.missing"), "{}", run.stderr);
    assert!(run.stderr.contains("broken.tf:2"), "{}", run.stderr);
    assert!(!run.stderr.contains("cannot read the tenant"), "{}", run.stderr);
    assert!(!run.stdout.contains("will be created"), "{}", run.stdout);
}

#[test]
fn a_redirect_is_an_error_and_nothing_follows_it() {
    let dir = config("transport");
    let elsewhere = Bystander::new();
    let server = Recorder::raw(vec![format!(
        "HTTP/1.1 307 Moved\r\nLocation: http://{}/acme/thoth/settings?token=abc\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        elsewhere.addr()
    )]);
    let run = plan_against(&dir, &server.url, &[]);
    let requests = server.requests();
    run.expect_code(1);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(elsewhere.untouched(), "the redirect was followed");
    assert!(run.stderr.contains("HTTP 307, a redirect to `http://127.0.0.1`"), "{}", run.stderr);
    assert!(!run.stderr.contains("token=abc"), "{}", run.stderr);
}

#[test]
fn user_information_cannot_pass_for_a_loopback_host() {
    let dir = config("transport");
    let target = Bystander::new();
    for url in [format!("http://localhost:80@{}", target.addr()), format!("http://127.0.0.1:1@{}/", target.addr())] {
        let run = plan_against(&dir, &url, &[]);
        run.expect_code(1);
        assert!(run.stderr.contains("carries a user name or password"), "{}", run.stderr);
    }
    assert!(target.untouched(), "a connection was made before the URL was refused");
}

#[test]
fn plain_http_to_this_machine_never_goes_through_a_proxy() {
    let dir = config("transport");
    let proxy = Bystander::new();
    let proxy_url = format!("http://{}", proxy.addr());
    let server = Recorder::start(vec![(200, "{}")]);
    let run = plan_against(
        &dir,
        &server.url,
        &[("HTTP_PROXY", proxy_url.as_str()), ("http_proxy", proxy_url.as_str()), ("ALL_PROXY", proxy_url.as_str())],
    );
    let requests = server.requests();
    run.expect_code(0);
    assert_eq!(requests.len(), 1);
    assert!(proxy.untouched(), "the request went to the proxy");
}

#[test]
fn skipping_tls_verification_warns_on_every_run() {
    let dir = config("transport");
    std::fs::write(
        dir.path().join("main.tf"),
        "provider \"thoth\" {\n  insecure_skip_tls_verify = true\n  retry_max_attempts = 1\n}\n\nresource \"thoth_governance_settings\" \"baseline\" {\n  compliance_profile = \"soc2\"\n}\n",
    )
    .expect("config");
    let closed = Bystander::new();
    let url = format!("https://{}", closed.addr());
    drop(closed);
    for _ in 0..2 {
        let run = plan_against(&dir, &url, &[]);
        assert!(run.stderr.contains("TLS certificates of the control plane are not verified"), "{}", run.stderr);
    }
}

#[test]
fn an_answer_cut_short_is_an_error_never_an_empty_answer() {
    let dir = config("transport");
    // The body stops long before its `Content-Length`, on every try.
    let cut = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\nConnection: close\r\n\r\n{\"compliance_profile\":".to_owned();
    let server = Recorder::raw(vec![cut; 4]);
    let run = plan_against(&dir, &server.url, &[]);
    let requests = server.requests();
    run.expect_code(1);
    assert_eq!(requests.len(), 4, "a cut answer to a GET is tried again: {requests:#?}");
    assert!(run.stderr.contains("GET /acme/thoth/settings got no answer: the answer was cut short"), "{}", run.stderr);
    assert!(!run.stdout.contains("will be created"), "{}", run.stdout);
}

#[test]
fn error_bodies_never_show_the_key_or_escape_sequences() {
    let dir = config("transport");
    let body = format!(r#"{{"error":"forbidden","message":"key {KEY} is not allowed \u001b]0;pwned\u0007"}}"#);
    let body: &'static str = Box::leak(body.into_boxed_str());
    let server = Recorder::start(vec![(403, body)]);
    let run = plan_against(&dir, &server.url, &[]);
    let _ = server.requests();
    run.expect_code(1);
    assert!(!run.stderr.contains(KEY) && !run.stdout.contains(KEY), "{}", run.stderr);
    assert!(run.stderr.contains("key (sensitive value) is not allowed"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

#[test]
fn list_rows_that_do_not_read_fail_the_plan_naming_the_row() {
    let dir = TempDir::new("transport-rows");
    std::fs::write(
        dir.path().join("main.tf"),
        "provider \"thoth\" {\n  retry_max_attempts = 1\n}\n\nresource \"thoth_mdm_provider\" \"jamf\" {\n  provider_name = \"jamf\"\n}\n",
    )
    .expect("config");
    for (list, expected) in [
        (
            r#"{"data":[{"provider":"intune","enabled":true},{"provider":"jamf","enabled":"yes"}]}"#,
            "row 2 (`jamf`) of the list has a string in `enabled`, where `enabled` needs a bool",
        ),
        (r#"{"data":[{"provider":"intune"},{"enabled":false,"name":null}]}"#, "row 2 of the list has no `provider`"),
        (r#"{"data":[{"provider":"intune"},7]}"#, "row 2 of the list is not an object"),
    ] {
        let server = Recorder::start(vec![(200, list); 3]);
        let run = plan_against(&dir, &server.url, &[]);
        drop(server);
        run.expect_code(1);
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
        assert!(!run.stdout.contains("will be created"), "{}", run.stdout);
    }
}

#[test]
fn a_create_refused_as_existing_leaves_no_intent_to_adopt() {
    let dir = TempDir::new("transport-409");
    std::fs::write(
        dir.path().join("main.tf"),
        "resource \"thoth_mcp_vendor\" \"v\" {\n  vendor_id = \"acme-mcp\"\n  display_name = \"Acme\"\n  host_patterns = [\"mcp.acme.example\"]\n}\n",
    )
    .expect("config");
    let exists = r#"{"error":"mcp_vendor_exists","message":"MCP vendor \"acme-mcp\" already exists"}"#;
    let server = Recorder::start(vec![(200, r#"{"data":[]}"#), (409, exists)]);
    let run = apply(&dir, &server);
    let requests = server.requests();
    run.expect_code(1);
    assert!(requests[1].starts_with("POST /acme/thoth/mcp/vendors"), "{requests:#?}");
    assert!(run.stdout.contains("thoth never takes over an object it did not create"), "{}", run.stdout);
    // The journal would make the next run adopt the vendor that was already there.
    let journal = std::fs::read_to_string(dir.path().join("thoth.state.json.journal")).unwrap_or_default();
    assert!(!journal.contains("thoth_mcp_vendor.v"), "{journal}");
}

#[test]
fn odd_retry_after_values_neither_stall_nor_stop_the_retries() {
    let dir = config("transport");
    let throttled = |value: &str| {
        format!("HTTP/1.1 429 Slow\r\nRetry-After: {value}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
    };
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        .to_owned();
    let server = Recorder::raw(vec![throttled("0"), throttled("-7"), throttled("soon, maybe"), ok]);
    let run = plan_against(&dir, &server.url, &[]);
    let requests = server.requests();
    run.expect_code(0);
    assert_eq!(requests.len(), 4, "{requests:#?}");
}

/// Throttling is waited out beyond the four attempts of the retry schedule: a 429 is a refusal
/// before anything was done, not a failure of the call.
#[test]
fn throttled_answers_do_not_use_up_the_attempts_of_a_call() {
    let dir = config("transport");
    let throttled =
        "HTTP/1.1 429 Slow\r\nRetry-After: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_owned();
    let unavailable = "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_owned();
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        .to_owned();
    let mut replies = vec![throttled.clone(); 5];
    replies.extend([unavailable.clone(), throttled, unavailable.clone(), unavailable, ok]);
    let server = Recorder::raw(replies);
    // The plan's outcome first: without every reply taken, the recorder never returns.
    plan_against(&dir, &server.url, &[]).expect_code(0);
    let requests = server.requests();
    assert_eq!(requests.len(), 10, "{requests:#?}");
}

/// Runs openssl with these arguments in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_private_ca_is_trusted_with_ca_file_and_nothing_else_is() {
    let dir = config("transport");
    let p = dir.path();
    // A private CA, and a certificate it signs for 127.0.0.1.
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=thoth test CA",
        ],
    );
    openssl(
        p,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(p.join("san.ext"), "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n").expect("ext");
    openssl(
        p,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // `openssl s_server -www` answers every request with an HTML status page over TLS.
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-accept", &port.to_string(), "-cert", "server.pem", "-key", "server.key", "-www"])
        .current_dir(p)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("s_server");
    let url = format!("https://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ready, "s_server did not start");
    let plan = |extra: &[(&str, &str)]| {
        let mut env = vec![("THOTH_TENANT_ID", "acme"), ("THOTH_API_KEY", KEY), ("THOTH_API_BASE_URL", url.as_str())];
        env.extend_from_slice(extra);
        thoth(p, &["plan"], &env)
    };
    // Not trusted by default: the handshake fails on the certificate.
    let untrusted = plan(&[]);
    untrusted.expect_code(1);
    assert!(untrusted.stderr.to_lowercase().contains("certificate"), "{}", untrusted.stderr);
    // Trusted through the environment, or the provider block's `ca_file`: the handshake
    // succeeds, and the HTML page is refused as what it is.
    let by_env = plan(&[("SSL_CERT_FILE", "ca.pem")]);
    let main_tf = std::fs::read_to_string(p.join("main.tf")).expect("main.tf");
    std::fs::write(
        p.join("main.tf"),
        main_tf.replace("provider \"thoth\" {\n", "provider \"thoth\" {\n  ca_file = \"ca.pem\"\n"),
    )
    .expect("main.tf");
    let by_block = plan(&[]);
    let _ = server.kill();
    let _ = server.wait();
    for trusted in [by_env, by_block] {
        trusted.expect_code(1);
        assert!(trusted.stderr.contains("answered with an unexpected body"), "{}", trusted.stderr);
        assert!(!trusted.stderr.to_lowercase().contains("certificate"), "{}", trusted.stderr);
    }
}
