//! The emulator's SQLite store, through the binary: a JSON data directory of an earlier
//! emulator is imported once, with its secrets digested, and plans against it as before; a
//! second emulator on the same directory is refused.

use std::fs;
use std::process::{Command, Stdio};

use crate::emulator::files_contain;
use crate::full::{rows, CANARIES};
use crate::support::{copy_dir, repo_path, thoth, EmulatorProcess, TempDir, KEY};

/// The digest key the fixture's state was written with.
const DIGEST_KEY: (&str, &str) = ("THOTH_DIGEST_KEY", "fixture-digest-key-0001");

#[test]
fn a_json_data_directory_is_imported_once_and_plans_unchanged() {
    let fixture = repo_path("tests/fixtures/emulator-json");
    let data = TempDir::new("import-data");
    copy_dir(&fixture.join("data"), data.path());
    let config = TempDir::new("import-config");
    copy_dir(&repo_path("examples/full"), config.path());
    fs::copy(fixture.join("thoth.state.json"), config.path().join("thoth.state.json")).expect("the state");

    let emulator = EmulatorProcess::start(data.path());
    assert!(data.path().join("tenants.imported/acme.json").is_file(), "the files are set aside");
    assert!(!data.path().join("tenants").exists());
    // The earlier emulator kept the settings' secrets in plaintext; the database does not.
    let database: Vec<u8> = ["emulator.sqlite3", "emulator.sqlite3-wal"]
        .iter()
        .flat_map(|name| fs::read(data.path().join(name)).unwrap_or_default())
        .collect();
    assert!(database.len() > 4096, "the database was written");
    for (_, canary) in CANARIES {
        assert!(!database.windows(canary.len()).any(|w| w == canary.as_bytes()), "{canary} imported in plaintext");
    }
    assert!(files_contain(data.path(), "canary-full-webhook-5d1f"), "the set-aside files are left as they were");

    let plan = |emulator: &EmulatorProcess| {
        let env = emulator.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(&CANARIES);
        all.push(DIGEST_KEY);
        thoth(config.path(), &["plan", "--detailed-exitcode"], &all)
    };
    let first = plan(&emulator);
    assert_eq!(first.code, 0, "the imported tenant plans without a change\n{}", first.transcript());

    // Put the files back, as if the rename had not happened: they are not imported again.
    copy_dir(&fixture.join("data"), data.path());
    let emulator = emulator.restart();
    assert_eq!(rows(&emulator.get("fleets"), "data").len(), 1, "one fleet, not two");
    assert_eq!(rows(&emulator.get("endpoints"), "data").len(), 2);
    assert_eq!(plan(&emulator).code, 0);
}

#[test]
fn a_second_emulator_on_the_same_directory_is_refused() {
    let data = TempDir::new("exclusive");
    let first = EmulatorProcess::start(data.path());
    let second = Command::new(env!("CARGO_BIN_EXE_thoth"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--api-key", KEY, "--data-dir"])
        .arg(data.path())
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run a second emulator");
    assert_ne!(second.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another emulator is using this data directory"), "{stderr}");
    // The first one still serves.
    assert!(rows(&first.get("fleets"), "data").is_empty());
}
