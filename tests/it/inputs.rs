//! Inputs that once panicked, aborted, hung or exhausted memory: each is refused with a
//! located diagnostic, in bounded time and memory, and the process exits 1.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{thoth_command, Run, TempDir};

/// Runs thoth, killing it if it has not finished after a minute (a hang guard, not a
/// measure of speed).
fn bounded(dir: &Path, args: &[&str], env: &[(&std::ffi::OsStr, &std::ffi::OsStr)]) -> Run {
    let mut cmd = thoth_command(dir, args, &[]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let watching = done.clone();
    let watchdog = std::thread::spawn(move || {
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(60) {
            if watching.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
        true
    });
    let out = child.wait_with_output().expect("output");
    done.store(true, Ordering::SeqCst);
    assert!(!watchdog.join().expect("watchdog"), "thoth {args:?} did not finish within a minute");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn config(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("inputs");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

#[track_caller]
fn refused(run: &Run, expected: &[&str]) {
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for e in expected {
        assert!(run.stderr.contains(e), "expected {e:?}\n{}", run.stderr);
    }
}

const FLEET: &str = "resource \"thoth_fleet\" \"f\" {\n  COUNT\n  name = \"f\"\n}\n";

#[test]
fn huge_counts_are_refused_with_the_limit_named() {
    for count in ["1e19", "1e9", "100001"] {
        let dir = config(&[("main.tf", &FLEET.replace("COUNT", &format!("count = {count}")))]);
        let run = bounded(dir.path(), &["validate"], &[]);
        refused(&run, &["more than the 100000 thoth allows", "main.tf:2:"]);
    }
}

#[test]
fn runaway_functions_are_refused() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "format",
            vec![("main.tf", "locals {\n  x = format(\"%.99999999999f\", 1)\n}\n".to_owned())],
            vec!["width or precision is larger than 10000", "main.tf:2:"],
        ),
        (
            "templatefile",
            vec![
                ("main.tf", "locals {\n  x = templatefile(\"self.tftpl\", {})\n}\n".to_owned()),
                ("self.tftpl", "${templatefile(\"self.tftpl\", {})}".to_owned()),
            ],
            vec!["templates nest more than 16 deep", "main.tf:2:"],
        ),
        (
            "yaml",
            vec![
                ("main.tf", "locals {\n  x = yamldecode(file(\"bomb.yaml\"))\n}\n".to_owned()),
                ("bomb.yaml", bomb.to_owned()),
            ],
            vec!["more than 1000000 values once its aliases are expanded", "main.tf:2:"],
        ),
        (
            "nesting",
            vec![("main.tf", format!("locals {{\n  x = {}1{}\n}}\n", "[".repeat(100_000), "]".repeat(100_000)))],
            vec!["brackets nest more than 128 levels deep", "main.tf:2:"],
        ),
        (
            "setproduct",
            vec![(
                "main.tf",
                "locals {\n  r = range(1000)\n  x = setproduct(local.r, local.r, local.r)\n}\n".to_owned(),
            )],
            vec!["more than 1000000 elements", "main.tf:3:"],
        ),
    ];
    for (what, files, expected) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let dir = config(&files);
        let run = bounded(dir.path(), &["validate"], &[]);
        assert_eq!(run.code, 1, "{what}: {}", run.transcript());
        refused(&run, &expected);
    }
}

#[test]
fn large_sets_are_not_quadratic() {
    // 100,000 distinct strings through `toset`, `distinct` and the set functions.
    let dir = config(&[(
        "main.tf",
        "locals {\n  all = flatten([for i in range(1000) : [for j in range(100) : \"k${i}-${j}\"]])\n  set = toset(local.all)\n  again = distinct(concat(local.all, local.all))\n  both = setintersection(local.set, local.again)\n  none = setsubtract(local.set, local.again)\n}\n\noutput \"sizes\" {\n  value = [length(local.set), length(local.again), length(local.both), length(local.none), length(setunion(local.set, local.all))]\n}\n",
    )]);
    let run = bounded(dir.path(), &["apply", "--embedded", "--auto-approve"], &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let run = bounded(dir.path(), &["output", "-json", "sizes"], &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stdout.split_whitespace().collect::<String>(), "[100000,100000,100000,0,100000]");
}

#[test]
fn files_that_are_not_text_or_not_regular_are_refused_without_blocking() {
    let dir = config(&[("main.tf", "locals {\n  x = file(\"pipe\")\n  y = file(\"/dev/zero\")\n}\n")]);
    let status = std::process::Command::new("mkfifo").arg(dir.path().join("pipe")).status().expect("mkfifo");
    assert!(status.success());
    let run = bounded(dir.path(), &["validate"], &[]);
    refused(&run, &["cannot read file `pipe`: it is a named pipe, not a regular file", "main.tf:2:"]);

    let dir = config(&[("main.tf", "locals {\n  x = \"caf\u{e9}\"\n}\n")]);
    let mut bytes = std::fs::read(dir.path().join("main.tf")).expect("read");
    let at = bytes.iter().position(|b| *b == 0xc3).expect("the accent");
    bytes.splice(at..at + 2, [0xe9]);
    std::fs::write(dir.path().join("main.tf"), bytes).expect("write latin-1");
    let run = bounded(dir.path(), &["validate"], &[]);
    refused(&run, &["`main.tf`", "not UTF-8 text (line 2, column 11"]);
}

#[test]
fn symlinked_configuration_files_are_read_and_odd_names_reported() {
    let dir = config(&[("shared.tf.txt", "resource \"thoth_fleet\" \"f\" {\n  name = \"f\"\n}\n")]);
    std::os::unix::fs::symlink(dir.path().join("shared.tf.txt"), dir.path().join("main.tf")).expect("symlink");
    let run = bounded(dir.path(), &["plan", "--embedded"], &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("thoth_fleet.f will be created"), "{}", run.stdout);

    let name = std::ffi::OsStr::from_bytes(b"bad-\xff.tf");
    std::fs::write(dir.path().join(name), "").expect("odd name");
    let run = bounded(dir.path(), &["validate"], &[]);
    refused(&run, &["is not UTF-8"]);
}

#[test]
fn an_environment_that_is_not_utf8_is_ignored() {
    let dir = config(&[("main.tf", "variable \"v\" {\n  default = \"d\"\n}\n")]);
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let name = std::ffi::OsStr::new("UNRELATED_SETTING");
    let bad_name = std::ffi::OsStr::from_bytes(b"X_\xff");
    let run = bounded(dir.path(), &["validate"], &[(name, bad), (bad_name, std::ffi::OsStr::new("1"))]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // One that thoth reads is named, not taken as unset.
    let run = bounded(dir.path(), &["validate"], &[(std::ffi::OsStr::new("THOTH_API_KEY"), bad)]);
    refused(&run, &["the environment variable `THOTH_API_KEY` is not UTF-8 text"]);
}

#[test]
fn diagnostics_never_show_a_sensitive_value() {
    const CANARY: &str = "hunter2-canary-0a7c";
    let dir = config(&[
        (
            "main.tf",
            "variable \"s\" {\n  type      = string\n  sensitive = true\n}\n\nvariable \"n\" {\n  type      = number\n  sensitive = true\n}\n\nvariable \"t\" {\n  type = number\n}\n\nlocals {\n  a = tonumber(var.s)\n  b = element([var.s], 3) + 1\n}\n",
        ),
        ("terraform.tfvars", &format!("s = \"{CANARY}\"\nn = \"{CANARY}\"\nt = \"x\" + 1\n")),
    ]);
    let run = bounded(dir.path(), &["validate"], &[]);
    refused(
        &run,
        &[
            "`(sensitive value)` is not a number",
            "expected number, and the sensitive value given is not",
            "terraform.tfvars:3:5",
        ],
    );
    assert!(!run.stderr.contains(CANARY) && !run.stdout.contains(CANARY), "{}", run.stderr);
    let env = [(std::ffi::OsStr::new("THOTH_VAR_n"), std::ffi::OsStr::new(CANARY))];
    let run = bounded(dir.path(), &["validate"], &env);
    assert!(!run.stderr.contains(CANARY), "{}", run.stderr);
}

#[test]
fn damaged_states_journals_and_locks_are_refused_or_repaired_with_a_message() {
    let dir = config(&[("main.tf", "resource \"thoth_fleet\" \"f\" {\n  name = \"f\"\n}\n")]);
    let run = |args: &[&str]| bounded(dir.path(), args, &[]);
    assert_eq!(run(&["apply", "--embedded", "--auto-approve"]).code, 0);
    let state_path = dir.path().join("thoth.state.json");
    let good = std::fs::read_to_string(&state_path).expect("state");
    let state: serde_json::Value = serde_json::from_str(&good).expect("json");

    // The same address twice: not a silent last-one-wins.
    let mut twice = state.clone();
    let first = twice["resources"][0].clone();
    twice["resources"].as_array_mut().expect("resources").push(first);
    std::fs::write(&state_path, serde_json::to_string(&twice).expect("json")).expect("write");
    refused(&run(&["plan", "--embedded"]), &["`thoth_fleet.f` is recorded twice"]);

    // A serial at its maximum.
    let mut full = state.clone();
    full["serial"] = serde_json::json!(u64::MAX);
    std::fs::write(&state_path, serde_json::to_string(&full).expect("json")).expect("write");
    refused(&run(&["apply", "--embedded", "--auto-approve"]), &["the serial is 18446744073709551615, its maximum"]);
    std::fs::write(&state_path, &good).expect("restore");

    // A journal entry of a type this thoth does not know.
    std::fs::write(
        dir.path().join("thoth.state.json.journal"),
        "{\"done\": \"thoth_unheard_of.x\", \"entry\": null}\n",
    )
    .expect("journal");
    refused(
        &run(&["apply", "--embedded", "--auto-approve"]),
        &["`thoth_unheard_of.x`, which is not a resource this version of thoth knows"],
    );
    std::fs::remove_file(dir.path().join("thoth.state.json.journal")).expect("remove");

    // An empty lock file names nobody, and `force-unlock` removes it.
    for garbage in ["", "not json {"] {
        std::fs::write(dir.path().join("thoth.state.json.lock"), garbage).expect("lock");
        refused(
            &run(&["apply", "--embedded", "--auto-approve"]),
            &["the lock cannot be read", "thoth force-unlock unreadable"],
        );
        assert_eq!(run(&["force-unlock", "unreadable"]).code, 0);
        assert!(!dir.path().join("thoth.state.json.lock").exists());
    }
    assert_eq!(std::fs::read_to_string(&state_path).expect("state"), good, "the state was never touched");

    // A state path that is a link to nothing is an error, never "no state".
    std::fs::rename(&state_path, dir.path().join("elsewhere.json")).expect("move");
    std::os::unix::fs::symlink(dir.path().join("gone.json"), &state_path).expect("dangling link");
    refused(&run(&["plan", "--embedded"]), &["is a symbolic link to a file that does not exist"]);
}

#[test]
fn for_each_over_many_keys_and_large_object_literals_finish() {
    // 100,000 instances from one map, and an object literal of 20,000 keys.
    let keys: String = (0..20_000).map(|i| format!("    k{i} = {i}\n")).collect();
    let dir = config(&[(
        "main.tf",
        &format!(
            "locals {{\n  big = {{\n{keys}  }}\n  many = {{ for i in flatten([for a in range(1000) : [for b in range(100) : \"${{a}}-${{b}}\"]]) : i => i }}\n}}\n\nresource \"thoth_fleet\" \"f\" {{\n  for_each = local.many\n  name     = each.key\n}}\n\noutput \"n\" {{\n  value = length(local.big)\n}}\n"
        ),
    )]);
    let run = bounded(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("The configuration is valid"), "{}", run.stdout);
}

/// Every input the fuzzer once broke on, kept under `fuzz/regressions/loader/`, is validated
/// as a configuration and as a variable file without a panic and with a clear exit.
#[test]
fn the_fuzzers_regressions_are_refused_without_a_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/loader");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for name in ["main.tf", "terraform.tfvars"] {
            let case = TempDir::new("regression");
            std::fs::write(case.path().join(name), &bytes).expect("write");
            if name == "terraform.tfvars" {
                std::fs::write(case.path().join("main.tf"), "variable \"x\" {\n  default = 1\n}\n").expect("write");
            }
            let run = bounded(case.path(), &["validate"], &[]);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            assert!(run.code == 0 || run.code == 1, "{}", run.transcript());
        }
        seen += 1;
    }
    assert!(seen >= 3, "regressions found: {seen}");
}
