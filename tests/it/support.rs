//! Shared test support: temporary directories, the snapshot settings, the real `thoth`
//! binary run as a process, and an emulator process on an ephemeral loopback port.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub(crate) const KEY: &str = "thoth_org_integration_test_key";
pub(crate) const TENANT: &str = "acme";

/// A fresh directory under the system temp dir, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("thoth-it-{name}-{}-{unique}-{nanos}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Asserts a snapshot stored in the top-level `snapshots/` folder.
pub(crate) fn snapshot(name: &str, value: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, value));
}

pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Copies a directory tree.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != ".thoth" {
                copy_dir(&entry.path(), &target);
            }
        } else if entry.file_name() != "thoth.state.json" && entry.file_name() != "thoth.state.json.backup" {
            fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// Every file under `dir` with its content, in path order.
pub(crate) fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.push((rel, fs::read(&path).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr together, for snapshots.
    pub(crate) fn transcript(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.transcript());
        self
    }
}

/// The `thoth` command in `dir` with a clean environment: only `PATH`, `HOME` and `extra_env`.
pub(crate) fn thoth_command(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thoth"));
    cmd.current_dir(dir).args(args).env_clear().stdin(Stdio::null());
    for var in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.env("NO_COLOR", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `thoth` in `dir` with a clean environment and waits for it.
pub(crate) fn thoth(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let output = thoth_command(dir, args, extra_env).output().expect("run thoth");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A `thoth emulator` process serving on an ephemeral loopback port.
pub(crate) struct EmulatorProcess {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl EmulatorProcess {
    pub(crate) fn start(data_dir: &Path) -> EmulatorProcess {
        EmulatorProcess::start_with(data_dir, &[])
    }

    /// Starts an emulator with extra arguments (fault injection flags).
    pub(crate) fn start_with(data_dir: &Path, extra: &[&str]) -> EmulatorProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_thoth"))
            .args(["emulator", "--listen", "127.0.0.1:0", "--api-key", KEY, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the emulator address");
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "the emulator printed `{url}`");
        EmulatorProcess { child, url, data_dir: data_dir.to_path_buf() }
    }

    /// Stops this process and starts another one on the same data directory.
    pub(crate) fn restart(mut self) -> EmulatorProcess {
        let _ = self.child.kill();
        let _ = self.child.wait();
        EmulatorProcess::start(&self.data_dir.clone())
    }

    /// The environment that points `thoth` at this emulator.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("THOTH_TENANT_ID", TENANT.to_owned()),
            ("THOTH_API_BASE_URL", self.url.clone()),
            ("THOTH_API_KEY", KEY.to_owned()),
        ]
    }

    fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.request_at(method, &format!("thoth/{path}"), body)
    }

    /// A request to any path under the tenant (`thoth/...`, `_emulator/...`).
    pub(crate) fn request_at(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/{TENANT}/{path}", self.url);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let mut req = reqwest::Client::new().request(method, url).header("X-Api-Key", KEY);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("emulator request");
            assert!(resp.status().is_success(), "emulator answered {}", resp.status());
            resp.json::<Value>().await.expect("json body")
        })
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        self.request(reqwest::Method::GET, path, None)
    }

    pub(crate) fn put(&self, path: &str, body: Value) -> Value {
        self.request(reqwest::Method::PUT, path, Some(body))
    }

    pub(crate) fn post(&self, path: &str, body: Value) -> Value {
        self.request(reqwest::Method::POST, path, Some(body))
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration directory (a copy of an example) with an emulator behind it.
pub(crate) struct Tenant {
    pub dir: TempDir,
    pub emulator: EmulatorProcess,
    _data: TempDir,
}

impl Tenant {
    pub(crate) fn from_example(example: &str) -> Tenant {
        Tenant::from_dir(&format!("examples/{example}"))
    }

    /// A copy of a configuration directory of the repository.
    pub(crate) fn from_dir(rel: &str) -> Tenant {
        Tenant::with_emulator_args(rel, &[])
    }

    /// A copy of a configuration directory with an emulator started with extra arguments.
    pub(crate) fn with_emulator_args(rel: &str, args: &[&str]) -> Tenant {
        let dir = TempDir::new("config");
        copy_dir(&repo_path(rel), dir.path());
        let data = TempDir::new("data");
        let emulator = EmulatorProcess::start_with(data.path(), args);
        Tenant { dir, emulator, _data: data }
    }

    /// Replaces the emulator by a fault-free one on the same data directory.
    pub(crate) fn restart_emulator(&mut self) {
        let data_dir = self.emulator.data_dir.clone();
        let _ = self.emulator.child.kill();
        let _ = self.emulator.child.wait();
        self.emulator = EmulatorProcess::start(&data_dir);
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `thoth` against this tenant's emulator without waiting for it.
    pub(crate) fn spawn_with(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Child {
        let env = self.emulator.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        thoth_command(self.path(), args, &all).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn thoth")
    }

    /// Runs `thoth` against this tenant's emulator with extra environment.
    pub(crate) fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let env = self.emulator.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        thoth(self.path(), args, &all)
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        fs::write(self.path().join(rel), text).expect("write config file");
    }

    /// Rewrites a config file with one replacement that must apply.
    #[track_caller]
    pub(crate) fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "`{from}` not found in {rel}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// The state entry of one resource, or `Value::Null`.
    pub(crate) fn recorded(&self, address: &str) -> Value {
        self.state()["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["address"] == address).cloned())
            .unwrap_or(Value::Null)
    }

    pub(crate) fn state(&self) -> Value {
        serde_json::from_str(&self.read("thoth.state.json")).expect("state file is JSON")
    }
}

/// Checks `value` against the JSON Schema keywords the schemas in `schemas/` use: `type`,
/// `required`, `properties`, `additionalProperties`, `items`, `enum`, `const`, `minimum`,
/// `oneOf` and local `$ref`s (with their sibling keywords). Returns one line per violation.
pub(crate) fn validate(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .trim_start_matches("#/")
            .split('/')
            .try_fold(root, |node, part| node.get(part))
            .unwrap_or(&Value::Null);
        problems.extend(validate(root, target, value, at));
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options.iter().filter(|o| validate(root, o, value, at).is_empty()).count();
        if matching != 1 {
            problems.push(format!("{at}: matches {matching} of the `oneOf` alternatives, not exactly one"));
        }
    }
    let type_name = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let actual = type_name(value);
        let integer_as_number = actual == "integer" && allowed.contains(&"number");
        if !(allowed.contains(&actual) || integer_as_number) {
            problems.push(format!("{at}: {actual} is not of type {allowed:?}"));
            return problems;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            problems.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if n < min {
            problems.push(format!("{at}: {n} is below {min}"));
        }
    }
    if let Value::Object(map) = value {
        let properties: std::collections::BTreeMap<&str, &Value> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                problems.push(format!("{at}: `{name}` is required"));
            }
        }
        for (k, v) in map {
            match properties.get(k.as_str()) {
                Some(sub) => problems.extend(validate(root, sub, v, &format!("{at}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{at}: `{k}` is not allowed"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            problems.extend(validate(root, item_schema, item, &format!("{at}[{i}]")));
        }
    }
    problems
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
