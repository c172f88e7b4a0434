//! Plans a reviewer reads: the three formats of a mixed plan (snapshots), the JSON schema,
//! `--deny-loosening`, saved plans and each of their refusals, mass deletes, and canaries
//! that must reach no output, plan file or state.

use serde_json::{json, Value};

use crate::support::{repo_path, snapshot, validate, Tenant};

const SECRET: &str = "canary-review-secret-51e0aa";
const ROTATED: &str = "canary-review-rotated-9b77f3";

fn secret(value: &str) -> [(&'static str, &str); 1] {
    [("THOTH_VAR_webhook_secret", value)]
}

/// Ids the emulator generates (`pol_` and 16 hex digits) and timestamps (in the ids of
/// actions) replaced by placeholders.
fn redact_ids(text: &str) -> String {
    redact_times(&redact_hex_ids(text))
}

/// `2026-11-29T04:19:39Z` becomes `<time>`.
fn redact_times(text: &str) -> String {
    let shape = |s: &[u8]| {
        s.len() >= 20
            && s.iter().take(20).enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                19 => *b == b'Z',
                _ => b.is_ascii_digit(),
            })
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if shape(rest.as_bytes()) {
            out.push_str("<time>");
            rest = &rest[20..];
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn redact_hex_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if let Some(us) = rest.find('_').filter(|u| *u > 0 && *u <= 4) {
            let prefix = &rest[..us];
            let hex = rest.get(us + 1..us + 17).unwrap_or("");
            let boundary_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let boundary_after = rest.as_bytes().get(us + 17).is_none_or(|b| !b.is_ascii_alphanumeric());
            if boundary_before
                && boundary_after
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && hex.len() == 16
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
            {
                out.push_str(prefix);
                out.push_str("_<id>");
                i += us + 17;
                continue;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The review fixture applied, then changed so that its next plan has every kind of change.
fn mixed() -> Tenant {
    let t = Tenant::from_dir("tests/fixtures/tenants/review");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    // Loosening: shadow high and strict endpoint mode.
    t.edit("main.tf", r#"shadow_high     = "block""#, r#"shadow_high     = "step_up""#);
    t.edit("main.tf", "secret_broker_strict_endpoint_mode   = true", "secret_broker_strict_endpoint_mode   = false");
    // A Rego bundle change and a browser policy JSON change.
    t.edit(
        "policies/mcp_guardrails.rego",
        r#"allowed_hosts := {"api.figma.com", "api.notion.com"}"#,
        r#"allowed_hosts := {"api.figma.com"}"#,
    );
    t.edit("browser/chrome-policy.json", r#""block_paste_of_secrets": true"#, r#""block_paste_of_secrets": false"#);
    // A replacement, a soft delete, a delete, a forget, an action and a create.
    t.edit("main.tf", r#"agent_id = "agent-support-bot""#, r#"agent_id = "agent-claims-bot""#);
    let text = t.read("main.tf");
    let cut = |text: &str, start: &str| {
        let from = text.find(start).expect("block");
        let to = from + text[from..].find("\n}\n").expect("block end") + 3;
        format!("{}{}", &text[..from], &text[to..])
    };
    let text = cut(&text, "resource \"thoth_mdm_provider\"");
    let text = cut(&text, "resource \"thoth_mcp_vendor\"");
    let text = cut(&text, "resource \"thoth_endpoint\"");
    t.write("main.tf", &text.replace(r#"trigger    = "v1""#, r#"trigger    = "v2""#));
    t.write("fleet.tf", "resource \"thoth_fleet\" \"claims\" {\n  name = \"claims-laptops\"\n}\n");
    // Drift: the browser provider renamed on the control plane.
    t.emulator.post("browser/providers", json!({"provider": "chrome", "name": "Chrome (renamed by hand)"}));
    // Unmanaged: a vendor added by hand, known to neither the configuration nor the state.
    t.emulator.post(
        "mcp/vendors",
        json!({"vendor_id": "shadow-tool", "display_name": "Shadow tool", "host_patterns": ["shadow.example"]}),
    );
    t
}

#[test]
fn a_mixed_plan_in_every_format() {
    let t = mixed();
    let human = t.run_with(&["plan"], &secret(SECRET));
    human.expect_code(0);
    snapshot("plans__mixed_human", &redact_ids(&human.stdout));
    let markdown = t.run_with(&["plan", "--format", "markdown"], &secret(SECRET));
    markdown.expect_code(0);
    // The hidden first line names the directory (here outside any repository), the tenant and
    // the workspace, so that CI finds its comment again.
    let (marker, body) = markdown.stdout.split_once('\n').expect("a marker line");
    let dir = serde_json::Value::String(t.path().display().to_string());
    assert_eq!(marker, format!("<!-- thoth-plan dir={dir} tenant=\"acme\" workspace=\"default\" -->"));
    snapshot("plans__mixed_markdown", &redact_ids(body));
    let json = t.run_with(&["plan", "--format", "json"], &secret(SECRET));
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("schemas/plan.schema.json")).expect("schema"))
            .expect("schema JSON");
    let problems = validate(&schema, &schema, &doc, "$");
    assert!(problems.is_empty(), "the JSON plan breaks its schema:\n{}", problems.join("\n"));
    let mut stable = doc.clone();
    stable["refresh"]["milliseconds"] = json!(0);
    snapshot("plans__mixed_json", &redact_ids(&serde_json::to_string_pretty(&stable).expect("JSON")));
    for run in [&human, &markdown, &json] {
        assert!(!run.transcript().contains(SECRET));
    }
    assert!(
        human.stdout.contains(
            "~ name          = \"Chrome (renamed by hand)\" -> \"Chrome Enterprise\" # changed outside thoth"
        ),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("Unmanaged: 1 × thoth_mcp_vendor"), "{}", human.stdout);
    assert_eq!(doc["unmanaged"], json!({"thoth_mcp_vendor": ["shadow-tool"]}));
}

#[test]
fn deny_loosening_exits_3_only_when_something_loosens() {
    let t = Tenant::from_dir("tests/fixtures/tenants/review");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    let args = ["plan", "--deny-loosening", "--detailed-exitcode"];
    t.run_with(&args, &secret(SECRET)).expect_code(0);
    // Tightening only: one host fewer in the allow-list.
    t.edit("main.tf", r#"["api.figma.com", "api.notion.com"]"#, r#"["api.figma.com"]"#);
    t.run_with(&args, &secret(SECRET)).expect_code(2);
    // Loosening: strict endpoint mode off.
    t.edit("main.tf", "secret_broker_strict_endpoint_mode   = true", "secret_broker_strict_endpoint_mode   = false");
    let loosening = t.run_with(&args, &secret(SECRET));
    loosening.expect_code(3);
    assert!(
        loosening.stdout.contains("secret_broker_strict_endpoint_mode = true -> false # loosens"),
        "{}",
        loosening.stdout
    );
    assert!(loosening.stderr.contains("--deny-loosening"), "{}", loosening.stderr);
    t.edit("main.tf", "secret_broker_strict_endpoint_mode   = false", "secret_broker_strict_endpoint_mode   = true");
    t.run_with(&args, &secret(SECRET)).expect_code(2);

    // Inside a policy document, key by key: a `block_*` flag turned off loosens.
    t.edit("browser/chrome-policy.json", r#""block_paste_of_secrets": true"#, r#""block_paste_of_secrets": false"#);
    let document = t.run_with(&args, &secret(SECRET));
    document.expect_code(3);
    assert!(
        document.stderr.contains("thoth_browser_policy.chrome_baseline: policy_json (loosens)"),
        "{}",
        document.stderr
    );
    let markdown = t.run_with(&["plan", "--format", "markdown"], &secret(SECRET));
    assert!(markdown.stdout.contains("**loosens** (`policy_json`)"), "{}", markdown.stdout);
    t.edit("browser/chrome-policy.json", r#""block_paste_of_secrets": false"#, r#""block_paste_of_secrets": true"#);

    // A key whose meaning thoth cannot tell does not pass the gate unless asked.
    t.edit("browser/chrome-policy.json", r#""dlp": {"#, r#""banner": "x", "dlp": {"#);
    let unknown = t.run_with(&args, &secret(SECRET));
    unknown.expect_code(3);
    assert!(
        unknown.stderr.contains("policy_json (unknown)") && unknown.stderr.contains("--allow-unknown-impact"),
        "{}",
        unknown.stderr
    );
    t.run_with(&["plan", "--deny-loosening", "--allow-unknown-impact", "--detailed-exitcode"], &secret(SECRET))
        .expect_code(2);
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused() {
    let t = Tenant::from_dir("tests/fixtures/tenants/review");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    t.edit("main.tf", r#"shadow_high     = "block""#, r#"shadow_high     = "step_up""#);
    let save = |name: &str| t.run_with(&["plan", "--out", name], &secret(SECRET)).expect_code(0).stdout.clone();
    let refused = |file: &str, env: &[(&str, &str)], why: &str| {
        let run = t.run_with(&["apply", file], env);
        run.expect_code(1);
        assert!(run.stderr.contains(why), "expected `{why}`:\n{}", run.stderr);
    };

    // The configuration changed after planning.
    save("a.plan");
    t.edit("main.tf", r#"shadow_critical = "block""#, r#"shadow_critical = "step_up""#);
    refused("a.plan", &secret(SECRET), "the configuration files changed since the plan was made");
    t.edit("main.tf", r#"shadow_critical = "step_up""#, r#"shadow_critical = "block""#);

    // A secret differs from the one planned with.
    save("b.plan");
    refused("b.plan", &secret(ROTATED), "a secret value differs");

    // An object the plan touches changed on the control plane.
    save("c.plan");
    t.emulator.put("settings", json!({"compliance_profile": "healthcare"}));
    // The settings document is shared: every settings resource is touched by a change to it.
    refused(
        "c.plan",
        &secret(SECRET),
        "`thoth_governance_settings.baseline`, `thoth_webhook_settings.siem` changed on the control plane",
    );
    t.emulator.put("settings", json!({"compliance_profile": "soc2"}));

    // The state changed: another apply ran in between.
    let shown = save("d.plan");
    let show = t.run_with(&["show", "d.plan"], &[]);
    show.expect_code(0);
    assert_eq!(show.stdout, shown, "show prints the plan as it was made");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    refused("d.plan", &secret(SECRET), "the state changed since the plan was made");

    // An unchanged plan is applied without asking.
    t.edit("main.tf", r#"shadow_medium   = "step_up""#, r#"shadow_medium   = "block""#);
    save("e.plan");
    let apply = t.run_with(&["apply", "e.plan"], &secret(SECRET));
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 0 created, 1 updated"), "{}", apply.stdout);
    assert_eq!(t.emulator.get("settings")["shadow_policy"]["medium"], "block");

    // No plan file and no state holds a secret.
    for file in ["a.plan", "b.plan", "c.plan", "d.plan", "e.plan", "thoth.state.json", "thoth.state.json.backup"] {
        let text = t.read(file);
        assert!(!text.is_empty(), "{file} exists");
        assert!(!text.contains(SECRET) && !text.contains(ROTATED), "{file} holds a secret");
    }
}

#[test]
fn a_mass_delete_is_refused_unless_allowed() {
    let t = Tenant::from_dir("tests/fixtures/tenants/review");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    let text = t.read("main.tf");
    let keep = text.find("resource \"thoth_mdm_provider\"").expect("mdm block");
    t.write("main.tf", &text[..keep]);
    let refused = t.run_with(&["apply", "--auto-approve"], &secret(SECRET));
    refused.expect_code(1);
    assert!(refused.stderr.contains("more than 50%"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--allow-mass-delete"), "{}", refused.stderr);
    assert_eq!(t.emulator.get("mcp/vendors/pastebin")["vendor_id"], "pastebin", "nothing was deleted");
    t.run_with(&["apply", "--auto-approve", "--allow-mass-delete"], &secret(SECRET)).expect_code(0);
}

#[test]
fn the_schema_check_rejects_what_breaks_the_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("schemas/plan.schema.json")).expect("schema"))
            .expect("schema JSON");
    let bad = json!({"format_version": 2, "thoth_version": "x", "tenant_id": "acme", "summary": {}, "impact": {}, "changes": [{"action": "explode"}], "extra": 1});
    let problems = validate(&schema, &schema, &bad, "$");
    for expected in ["$.format_version", "`create` is required", "$.changes[0].action", "`extra` is not allowed"] {
        assert!(problems.iter().any(|p| p.contains(expected)), "missing `{expected}` in {problems:#?}");
    }
}

#[test]
fn values_from_the_control_plane_cannot_drive_the_terminal_or_the_comment() {
    let t = Tenant::from_dir("tests/fixtures/tenants/review");
    t.run_with(&["apply", "--auto-approve"], &secret(SECRET)).expect_code(0);
    let hostile = "Paste\u{1b}]0;owned\u{7}\u{1b}[2J\n```\n</details><img src=x onerror=alert(1)>";
    t.emulator.put(
        "mcp/vendors/pastebin",
        json!({"display_name": hostile, "host_patterns": ["pastebin.com"], "approved": false}),
    );
    let human = t.run_with(&["plan"], &secret(SECRET));
    human.expect_code(0);
    assert!(human.stdout.contains("thoth_mcp_vendor.pastebin"), "{}", human.stdout);
    assert!(!human.stdout.contains('\u{1b}') && !human.stdout.contains('\u{7}'), "{:?}", human.stdout);
    assert!(human.stdout.contains("\\u{1b}]0;owned"), "{}", human.stdout);
    let markdown = t.run_with(&["plan", "--format", "markdown"], &secret(SECRET));
    assert!(!markdown.stdout.contains('\u{1b}'), "{:?}", markdown.stdout);
    // The value stays inside its code block: the fence is longer than any run in it.
    let block_start = markdown.stdout.find("````diff").expect("a longer fence");
    let block_end = markdown.stdout[block_start + 8..].find("````").expect("closed") + block_start + 8;
    assert!(markdown.stdout[block_start..block_end].contains("<img src=x"), "{}", markdown.stdout);
    assert_eq!(markdown.stdout.matches("<img").count(), 1, "{}", markdown.stdout);
}

#[test]
fn resources_planned_aside_keep_their_place_and_converge() {
    // Every other fleet is referred to by the next one: those are planned in the walk, the
    // others beside it, and all go back in the order of the walk (dependencies first, ties by
    // name), which an apply of one change at a time follows.
    let t = Tenant::from_dir("tests/fixtures/tenants/transport");
    let mut fleets = String::new();
    for i in 0..120 {
        let name = if i % 2 == 1 {
            format!("\"${{thoth_fleet.f{:03}.name}}-next\"", i - 1)
        } else {
            format!("\"fleet-{i:03}\"")
        };
        fleets.push_str(&format!("resource \"thoth_fleet\" \"f{i:03}\" {{\n  name = {name}\n}}\n\n"));
    }
    t.write("fleets.tf", &fleets);
    let apply = t.run_with(&["apply", "--auto-approve", "--parallelism", "1"], &[]);
    apply.expect_code(0);
    let created: Vec<&str> = apply
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": created after ").map(|(address, _)| address))
        .filter(|a| a.starts_with("thoth_fleet."))
        .collect();
    let expected: Vec<String> = (0..120).map(|i| format!("thoth_fleet.f{i:03}")).collect();
    assert_eq!(created, expected, "{}", apply.stdout);
    t.run_with(&["plan", "--detailed-exitcode"], &[]).expect_code(0);
}
