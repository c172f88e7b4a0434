//! Scale benchmarks of the real binary against the emulator, on synthetic tenants
//! (`thoth::synth`). See `BENCHMARKS.md` for the commands and the figures.
//!
//! `cargo bench --bench scale` runs every scenario at 1,000 and 10,000 resources, on both
//! shapes of `thoth::synth`; `cargo bench --bench scale -- --sizes 1000 --shapes real` picks
//! the sizes and shapes. Where HashiCorp's reference front end is built (`target/hclpeer`, or
//! the path in `THOTH_HCLPEER`; see `BENCHMARKS.md`), it runs on the same files right after
//! thoth's front end, and the ratio of the two is printed. `-- --write DIR` writes the tenants
//! into DIR and measures nothing, for profiling. The scenarios that change
//! nothing run five times and report the median wall time and the largest peak memory; the
//! apply runs once. The fault matrix runs the full example over 20 seeds. Under `cargo test`
//! (no `--bench` argument) every scenario runs once at a tiny size (the fault matrix one seed),
//! so that CI keeps them working.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thoth::synth::Shape;

const KEY: &str = "thoth_org_bench_key";
const TENANT: &str = "acme";

/// One run of the binary: wall time, peak resident memory and what it printed.
struct Measured {
    wall: Duration,
    peak_rss_mib: f64,
    code: i32,
    stdout: String,
    stderr: String,
}

fn thoth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_thoth"))
}

/// The peak resident set size of a running process so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `thoth` in `dir`, sampling its peak memory until it exits.
fn measure(dir: &Path, args: &[&str], url: Option<&str>) -> Measured {
    let mut cmd = thoth();
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1").stdout(Stdio::piped()).stderr(Stdio::piped());
    // Secrets are digested with a keyed HMAC, as in a CI pipeline that keeps the key as a secret.
    cmd.env("THOTH_DIGEST_KEY", "bench-digest-key-5f0e1d2c3b4a");
    if let Some(url) = url {
        cmd.env("THOTH_API_BASE_URL", url).env("THOTH_API_KEY", KEY).env("THOTH_TENANT_ID", TENANT);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start thoth");
    let pid = child.id();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err_reader = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let wall = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    Measured {
        wall,
        peak_rss_mib: peak as f64 / 1024.0,
        code: status.code().unwrap_or(-1),
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// A `thoth emulator` process.
struct Emulator {
    child: Child,
    url: String,
}

impl Emulator {
    fn start(data: &Path, latency_ms: u64) -> Emulator {
        Emulator::start_with(data, &["--latency-ms", &latency_ms.to_string()])
    }

    /// An emulator started with extra arguments (latency, faults).
    fn start_with(data: &Path, extra: &[&str]) -> Emulator {
        let mut child = thoth()
            .args(["emulator", "--listen", "127.0.0.1:0", "--api-key", KEY, "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("emulator address");
        Emulator { child, url: line.trim().to_owned() }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thoth-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs the same command `runs` times: the median wall time and the largest peak memory, with
/// the output of the last run. A single run of a short command varies by tens of percent.
fn measure_runs(runs: usize, dir: &Path, args: &[&str], url: Option<&str>) -> Measured {
    let mut all: Vec<Measured> = (0..runs.max(1)).map(|_| measure(dir, args, url)).collect();
    let peak = all.iter().map(|m| m.peak_rss_mib).fold(0.0, f64::max);
    let mut walls: Vec<Duration> = all.iter().map(|m| m.wall).collect();
    walls.sort();
    let mut last = all.pop().expect("one run at least");
    last.wall = walls[walls.len() / 2];
    last.peak_rss_mib = peak;
    last
}

fn check(m: &Measured, expected: i32, what: &str) {
    assert_eq!(m.code, expected, "{what} exited with {}:\n{}\n{}", m.code, m.stdout, m.stderr);
}

fn row(scenario: &str, shape: Shape, n: usize, m: &Measured, extra: &str) {
    println!(
        "| {scenario:<34} | {:<5} | {n:>6} | {:>9.1} ms | {:>7.1} MiB | {extra} |",
        shape_name(shape),
        m.wall.as_secs_f64() * 1000.0,
        m.peak_rss_mib
    );
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Light => "light",
        Shape::Real => "real",
    }
}

/// The reference front end, when it is built.
fn hclpeer() -> Option<PathBuf> {
    let path = std::env::var_os("THOTH_HCLPEER")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hclpeer"), PathBuf::from);
    path.is_file().then_some(path)
}

/// The reference front end on `dir`: its best total over `runs` repeats in one process, as it
/// reports it, and its peak memory.
fn reference(peer: &Path, dir: &Path, runs: usize) -> Option<(f64, f64, String)> {
    let out = Command::new(peer).arg(dir).args(["--repeat", &runs.to_string()]).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let doc: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let peak = doc["max_rss_kb"].as_f64().map_or(0.0, |kb| kb / 1024.0);
    Some((doc["total_ms"].as_f64()?, peak, line))
}

fn bench(n: usize, shape: Shape, latency_ms: u64, parallelism: usize, runs: usize) {
    let config = scratch(&format!("config-{}-{n}", shape_name(shape)));
    thoth::synth::write_tenant(&config, n, shape).expect("write the tenant");

    // Front end: load, evaluate and graph, no network.
    let m = measure_runs(runs, &config, &["validate"], None);
    check(&m, 0, "validate");
    row("front end (validate)", shape, n, &m, "");
    if let Some(peer) = hclpeer() {
        let (total_ms, peak, line) = reference(&peer, &config, runs).expect("the reference front end's figures");
        let ratio = total_ms / (m.wall.as_secs_f64() * 1000.0);
        println!(
            "| {:<34} | {:<5} | {n:>6} | {total_ms:>9.1} ms | {peak:>7.1} MiB | thoth {ratio:.1}× faster; {} |",
            "reference front end (hclpeer)",
            shape_name(shape),
            line.trim().replace('|', "/")
        );
    }

    // A plan of n creates rendered as Markdown, against an empty tenant.
    let data = scratch(&format!("data-{}-{n}", shape_name(shape)));
    let emulator = Emulator::start(&data, 0);
    let m = measure_runs(runs, &config, &["plan", "--format", "markdown"], Some(&emulator.url));
    check(&m, 0, "plan --format markdown");
    row("plan of n creates, Markdown", shape, n, &m, &format!("{} characters", m.stdout.len()));

    // Apply of n new resources with latency: the floor is n / parallelism round trips.
    drop(emulator);
    let _ = std::fs::remove_dir_all(&data);
    let slow = Emulator::start(&data, latency_ms);
    let p = parallelism.to_string();
    let m = measure(&config, &["apply", "--auto-approve", "--parallelism", &p], Some(&slow.url));
    check(&m, 0, "apply");
    #[allow(clippy::cast_precision_loss)]
    let floor = n as f64 / parallelism as f64 * latency_ms as f64;
    row(
        &format!("apply n new, {latency_ms} ms latency, -p {parallelism}"),
        shape,
        n,
        &m,
        &format!("floor {floor:.0} ms"),
    );
    drop(slow);

    // No-op plans with state and remote populated, without and with latency.
    for latency in [0, latency_ms] {
        let emulator = Emulator::start(&data, latency);
        let m = measure_runs(runs, &config, &["plan", "--detailed-exitcode", "--format", "json"], Some(&emulator.url));
        check(&m, 0, "no-op plan");
        let doc: serde_json::Value = serde_json::from_str(&m.stdout).expect("JSON plan");
        row(
            &format!("no-op plan, {latency} ms latency"),
            shape,
            n,
            &m,
            &format!("{} HTTP calls", doc["refresh"]["calls"]),
        );
    }
    let _ = std::fs::remove_dir_all(&config);
    let _ = std::fs::remove_dir_all(&data);
}

/// Copies a configuration directory.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy target");
    for entry in std::fs::read_dir(from).expect("copy source").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// The contract's fault matrix (20% server errors, 10% ambiguous failures, 40 requests a
/// second) on the full example, one seed after another: how many plans succeeded, and how many
/// single applies converged (the next plan, still under faults, shows no change).
fn fault_matrix(seeds: u32) {
    const MATRIX: [&str; 6] = ["--error-rate", "0.2", "--ambiguous-rate", "0.1", "--throttle-rps", "40"];
    const SECRETS: [(&str, &str); 3] = [
        ("THOTH_VAR_webhook_secret", "bench-webhook-secret"),
        ("THOTH_VAR_siem_secret", "bench-siem-secret"),
        ("THOTH_VAR_pam_request_secret", "bench-pam-secret"),
    ];
    let (mut planned, mut converged) = (0, 0);
    let mut applies = Vec::new();
    for seed in 1..=seeds {
        let dir = scratch(&format!("faults-{seed}"));
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full"), &dir.join("config"));
        let seed_arg = seed.to_string();
        let args: Vec<&str> = ["--seed", seed_arg.as_str()].into_iter().chain(MATRIX).collect();
        let emulator = Emulator::start_with(&dir.join("data"), &args);
        let run = |args: &[&str]| {
            let mut cmd = thoth();
            cmd.current_dir(dir.join("config")).args(args).env("NO_COLOR", "1");
            cmd.env("THOTH_API_BASE_URL", &emulator.url).env("THOTH_API_KEY", KEY).env("THOTH_TENANT_ID", TENANT);
            cmd.envs(SECRETS).stdout(Stdio::null()).stderr(Stdio::null());
            let started = Instant::now();
            let code = cmd.status().expect("run thoth").code().unwrap_or(-1);
            (code, started.elapsed())
        };
        planned += u32::from(run(&["plan", "--detailed-exitcode"]).0 == 2);
        let (code, wall) = run(&["apply", "--auto-approve"]);
        applies.push(wall);
        converged += u32::from(code == 0 && run(&["plan", "--detailed-exitcode"]).0 == 0);
        drop(emulator);
        let _ = std::fs::remove_dir_all(&dir);
    }
    applies.sort();
    let median = applies.get(applies.len() / 2).copied().unwrap_or_default();
    println!(
        "| fault matrix, full example          |       | {seeds:>6} | {:>9.1} ms |             | plans {planned}/{seeds}, one apply converged {converged}/{seeds} |",
        median.as_secs_f64() * 1000.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let sizes: Vec<usize> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args.get(i + 1).map_or_else(Vec::new, |s| s.split(',').filter_map(|n| n.parse().ok()).collect()),
        None if benchmarking => vec![1_000, 10_000],
        None => vec![40],
    };
    let shapes: Vec<Shape> = match args.iter().position(|a| a == "--shapes") {
        Some(i) => args.get(i + 1).map_or_else(Vec::new, |s| {
            s.split(',')
                .filter_map(|name| [Shape::Light, Shape::Real].into_iter().find(|&k| shape_name(k) == name))
                .collect()
        }),
        None => vec![Shape::Light, Shape::Real],
    };
    // `--write DIR` only writes the tenants, one directory per shape and size, for profiling.
    if let Some(dir) = args.iter().position(|a| a == "--write").and_then(|i| args.get(i + 1)) {
        for n in &sizes {
            for &shape in &shapes {
                let to = Path::new(dir).join(format!("{}-{n}", shape_name(shape)));
                thoth::synth::write_tenant(&to, *n, shape).expect("write the tenant");
                println!("{}", to.display());
            }
        }
        return;
    }
    println!("| scenario                           | shape |      n |       wall    |   peak RSS  | |");
    println!("|---|---|---:|---:|---:|---|");
    for n in sizes {
        for &shape in &shapes {
            bench(n, shape, if benchmarking { 20 } else { 1 }, 10, if benchmarking { 5 } else { 1 });
        }
    }
    fault_matrix(if benchmarking { 20 } else { 1 });
}
