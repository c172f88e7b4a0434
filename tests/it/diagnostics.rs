//! Every kind of configuration error, as `thoth validate` reports it (or the command a
//! fixture's `thoth-args` file names, for what only planning checks): one fixture directory
//! per case under `tests/fixtures/diagnostics/`, one snapshot of the exit code and output each.

use crate::support::{repo_path, snapshot, thoth};

#[test]
fn each_invalid_configuration_gets_located_diagnostics() {
    let root = repo_path("tests/fixtures/diagnostics");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "fixtures missing: {cases:?}");
    for case in cases {
        let dir = root.join(&case);
        let args = std::fs::read_to_string(dir.join("thoth-args")).unwrap_or_else(|_| "validate".to_owned());
        let args: Vec<&str> = args.split_whitespace().collect();
        let run = thoth(&dir, &args, &[]);
        assert_ne!(run.code, 0, "`{case}` must fail");
        assert!(!run.stderr.contains("panicked"), "`{case}` panicked:\n{}", run.stderr);
        snapshot(&format!("diagnostics__{case}"), &run.transcript());
    }
}
