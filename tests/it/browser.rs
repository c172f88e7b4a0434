//! `thoth browser sync` on a device: the browser's managed-policy file made to match GovAPI,
//! as plan (`--dry-run`) and apply, into a temporary policy directory; Chrome, Edge and
//! Firefox layouts, a policy disabled upstream, and the refusals.

use std::path::Path;

use serde_json::{json, Value};

use crate::full::CANARIES;
use crate::support::{snapshot, thoth, Run, TempDir, Tenant};

const DEVICE: &str = "claims-mbp-001";
const USER: &str = "ana.ruiz@example.com";

fn sync(t: &Tenant, dir: &Path, extra: &[&str]) -> Run {
    let dir = dir.display().to_string();
    let mut args = vec!["browser", "sync", "--device-id", DEVICE, "--user-id", USER, "--policy-dir", dir.as_str()];
    args.extend_from_slice(extra);
    let env: Vec<(&str, String)> = t.emulator.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    thoth(t.path(), &args, &env)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn browser_sync_plans_writes_and_keeps_the_managed_policy_file() {
    let t = Tenant::from_example("full");
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    let dir = TempDir::new("chrome-policies");
    std::fs::write(dir.path().join("it-department.json"), "{\"HomepageLocation\": \"https://intranet\"}\n").unwrap();
    let file = dir.path().join("thoth.json");

    // The dry run shows the whole file as added and writes nothing.
    let dry = sync(&t, dir.path(), &["--dry-run"]);
    dry.expect_code(0);
    assert!(dry.stdout.contains("+  \"blocked_ai_domains\": ["), "{}", dry.stdout);
    assert!(dry.stdout.contains("thoth would create"), "{}", dry.stdout);
    assert!(!file.exists(), "the dry run wrote the file");

    let applied = sync(&t, dir.path(), &[]);
    applied.expect_code(0);
    snapshot("browser_chrome_linux", &read(&file));
    let second = sync(&t, dir.path(), &[]);
    second.expect_code(0);
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    assert!(!dir.path().join("thoth.json.thoth-backup").exists(), "a no-op replaced the file");

    // A second enforced policy joins the file; a monitored one is reported only; once the
    // enforced one is disabled upstream, its keys leave the file.
    let extensions = |active: bool| {
        json!({"policy_id": "pol-chrome-extensions", "name": "chrome-extensions", "provider": "chrome", "active": active,
               "enforcement_mode": "enforce", "policy": {"ExtensionInstallBlocklist": ["*"]}})
    };
    t.emulator.post("browser/policies", extensions(true));
    t.emulator.post(
        "browser/policies",
        json!({"policy_id": "pol-chrome-watch", "name": "chrome-watch", "provider": "chrome", "enforcement_mode": "monitor",
               "policy": {"DownloadRestrictions": 3}}),
    );
    let joined = sync(&t, dir.path(), &["--json"]);
    joined.expect_code(0);
    let outcome: Value = serde_json::from_str(&joined.stdout).expect("JSON outcome");
    assert_eq!(outcome["action"], "update");
    let applied: Vec<(String, bool)> = outcome["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or_default().to_owned(), p["applied"].as_bool().unwrap_or_default()))
        .collect();
    assert_eq!(
        applied,
        [
            ("chrome-baseline-v1".to_owned(), true),
            ("chrome-extensions".to_owned(), true),
            ("chrome-watch".to_owned(), false)
        ]
    );
    assert!(read(&file).contains("ExtensionInstallBlocklist"));
    assert!(!read(&file).contains("DownloadRestrictions"), "a monitored policy was enforced");
    t.emulator.post("browser/policies", extensions(false));
    sync(&t, dir.path(), &[]).expect_code(0);
    assert!(!read(&file).contains("ExtensionInstallBlocklist"), "a disabled policy stayed");
    assert!(read(&dir.path().join("thoth.json.thoth-backup")).contains("ExtensionInstallBlocklist"));
    assert_eq!(read(&dir.path().join("it-department.json")), "{\"HomepageLocation\": \"https://intranet\"}\n");

    // A file changed by hand is not thoth's any more: refused without `--force`.
    std::fs::write(&file, "{}\n").unwrap();
    let refused = sync(&t, dir.path(), &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("was not written by thoth, or was changed by hand since"), "{}", refused.stderr);
    sync(&t, dir.path(), &["--force"]).expect_code(0);
    assert!(read(&file).contains("blocked_ai_domains"));

    // The enrollment disabled upstream: no policy applies, and the file goes.
    t.emulator.post(
        "browser/enrollments",
        json!({"enrollment_id": t.recorded("thoth_browser_enrollment.ana")["id"], "provider": "chrome", "user_id": USER,
               "device_id": DEVICE, "status": "disabled"}),
    );
    let gone = sync(&t, dir.path(), &[]);
    gone.expect_code(0);
    assert!(gone.stdout.contains("has no active chrome enrollment"), "{}", gone.stdout);
    assert!(!file.exists() && dir.path().join("thoth.json.thoth-backup").exists());
}

#[test]
fn edge_firefox_and_macos_layouts() {
    let t = Tenant::from_example("bootstrap");
    let policy = json!({"blocked_ai_domains": ["chat.unapproved-ai.example"], "dlp": {"block_paste_of_secrets": true}, "max_upload_mb": 10});
    for provider in ["chrome", "edge", "firefox"] {
        t.emulator.post("browser/providers", json!({"provider": provider, "name": provider}));
        t.emulator.post(
            "browser/policies",
            json!({"policy_id": format!("pol-{provider}"), "name": format!("{provider}-baseline"), "provider": provider,
                   "enforcement_mode": "enforce", "policy": policy}),
        );
        t.emulator.post(
            "browser/enrollments",
            json!({"enrollment_id": format!("enr-{provider}"), "provider": provider, "user_id": USER, "device_id": DEVICE, "status": "active"}),
        );
    }
    for (browser, platform, file) in [
        ("edge", "linux", "thoth.json"),
        ("firefox", "linux", "policies.json"),
        ("chrome", "macos", "com.google.Chrome.plist"),
        ("edge", "macos", "com.microsoft.Edge.plist"),
        ("firefox", "macos", "policies.json"),
    ] {
        let dir = TempDir::new("layout");
        sync(&t, dir.path(), &["--browser", browser, "--platform", platform]).expect_code(0);
        snapshot(&format!("browser_{browser}_{platform}"), &read(&dir.path().join(file)));
    }
    // A `policies.json` that some other tool put in Firefox's directory is left alone.
    let dir = TempDir::new("firefox-distribution");
    std::fs::write(dir.path().join("policies.json"), "{\"policies\": {\"DisableAppUpdate\": true}}\n").unwrap();
    let refused = sync(&t, dir.path(), &["--browser", "firefox"]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("move it aside, or pass `--force`"), "{}", refused.stderr);
}

#[test]
fn an_unwritable_policy_directory_is_refused_with_the_sudo_hint() {
    let t = Tenant::from_example("bootstrap");
    t.emulator.post("browser/providers", json!({"provider": "chrome", "name": "Chrome"}));
    t.emulator.post(
        "browser/policies",
        json!({"name": "baseline", "provider": "chrome", "policy": {"IncognitoModeAvailability": 1}}),
    );
    t.emulator.post(
        "browser/enrollments",
        json!({"provider": "chrome", "user_id": USER, "device_id": DEVICE, "status": "active"}),
    );
    let dir = TempDir::new("root-owned");
    let managed = dir.path().join("managed");
    std::fs::create_dir(&managed).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&managed, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let env = t.emulator.env();
    let managed_text = managed.display().to_string();
    let args = ["browser", "sync", "--device-id", DEVICE, "--user-id", USER, "--policy-dir", managed_text.as_str()];
    // As the unprivileged user the sync would run as on a device; root may write anywhere.
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(env!("CARGO_BIN_EXE_thoth"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_thoth"))
    };
    cmd.args(args).current_dir("/").env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run thoth");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied") && stderr.contains("sudo thoth browser sync"), "{stderr}");
    assert!(!managed.join("thoth.json").exists());
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
