//! Real servers the backend tests need, started once per test binary on loopback ports: a
//! private PostgreSQL cluster in a temporary directory (run as an unprivileged user when the
//! tests run as root, since PostgreSQL refuses root) and a moto S3 server. Each is watched by
//! a shell loop that stops it when the test process is gone. A `Proxy` stands between thoth
//! and a server so that a test can take the server away and bring it back.
//!
//! `.ci/run` installs what they need on a fresh machine and says where with
//! `THOTH_TEST_PG_BIN` (PostgreSQL's `bin` directory) and `THOTH_TEST_MOTO_SERVER`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `script` with `sh` in the background (as an unprivileged user when `unprivileged` and
/// this process is root), with a watcher that ends it when this test process exits.
fn spawn_watched(script: &str, dir: &Path, unprivileged: bool) -> std::process::Child {
    let me = std::process::id();
    let watched = format!(
        "{script} & child=$!; while [ -d /proc/{me} ] && kill -0 $child 2>/dev/null; do sleep 1; done; kill -INT $child 2>/dev/null; sleep 2; kill -9 $child 2>/dev/null"
    );
    let mut cmd = if unprivileged && is_root() {
        let user = if Command::new("id").arg("postgres").output().is_ok_and(|o| o.status.success()) {
            "postgres"
        } else {
            "nobody"
        };
        let _ = Command::new("chown").args(["-R", user]).arg(dir).status();
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", "sh", "-c", &watched]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &watched]);
        c
    };
    cmd.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn().expect("start a watched server")
}

/// A directory that outlives the tests of this binary; removed when the next run starts.
fn server_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thoth-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("server dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
    }
    dir
}

fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("THOTH_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL is needed by the backend tests: run `.ci/run`, which installs it, or set THOTH_TEST_PG_BIN")
}

/// The shared PostgreSQL server.
pub(crate) struct Postgres {
    pub port: u16,
    /// The watcher, which ends the server with this process.
    _watcher: std::process::Child,
}

impl Postgres {
    /// A connection string to the server through `port` (the server's own, or a proxy's).
    pub(crate) fn conn_str(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }
}

pub(crate) fn postgres() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        let bin = postgres_bin();
        let dir = server_dir("pg");
        let port = free_port();
        let log = dir.join("pg.log");
        let data = dir.join("data");
        let script = format!(
            "{initdb} -D {data} -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >{log} 2>&1 && exec {postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 >>{log} 2>&1",
            initdb = bin.join("initdb").display(),
            postgres = bin.join("postgres").display(),
            data = data.display(),
            log = log.display(),
            dir = dir.display(),
        );
        let watcher = spawn_watched(&format!("( {script} )"), &dir, true);
        wait_for_port(port, "PostgreSQL", &log);
        Postgres { port, _watcher: watcher }
    })
}

fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("THOTH_TEST_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-tools/venv/bin/moto_server");
    if local.exists() {
        return local;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("moto_server"))
        .find(|p| p.exists())
        .expect(
            "moto is needed by the s3 backend tests: run `.ci/run`, which installs it, or set THOTH_TEST_MOTO_SERVER",
        )
}

/// The shared S3 server (moto).
pub(crate) struct S3Server {
    pub port: u16,
    /// The watcher, which ends the server with this process.
    _watcher: std::process::Child,
}

pub(crate) fn s3() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let moto = moto_server();
        let dir = server_dir("s3");
        let port = free_port();
        let log = dir.join("moto.log");
        let script = format!("exec {} -H 127.0.0.1 -p {port} >{} 2>&1", moto.display(), log.display());
        let watcher = spawn_watched(&format!("( {script} )"), &dir, false);
        wait_for_port(port, "moto", &log);
        S3Server { port, _watcher: watcher }
    })
}

impl S3Server {
    /// Creates a bucket with a name no other test uses, and returns it.
    pub(crate) fn bucket(&self, name: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let bucket = format!("thoth-{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
            .replace('_', "-");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let url = format!("http://127.0.0.1:{}/{bucket}", self.port);
            let resp = reqwest::Client::new().put(url).send().await.expect("create bucket");
            assert!(resp.status().is_success(), "moto answered {} to a bucket create", resp.status());
        });
        bucket
    }

    /// Writes an object as another machine would.
    pub(crate) fn put(&self, bucket: &str, key: &str, body: &str) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let url = format!("http://127.0.0.1:{}/{bucket}/{key}", self.port);
            let resp = reqwest::Client::new()
                .put(url)
                .header("Content-Type", "application/octet-stream")
                .body(body.to_owned())
                .send()
                .await
                .expect("put object");
            assert!(resp.status().is_success(), "moto answered {} to a put", resp.status());
        });
    }

    /// The object keys of a bucket.
    pub(crate) fn keys(&self, bucket: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let body = rt.block_on(async {
            let url = format!("http://127.0.0.1:{}/{bucket}?list-type=2", self.port);
            reqwest::Client::new()
                .get(url)
                .header("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request")
                .send()
                .await
                .expect("list bucket")
                .text()
                .await
                .expect("list body")
        });
        body.split("<Key>").skip(1).filter_map(|p| p.split("</Key>").next()).map(str::to_owned).collect()
    }
}

/// A TCP proxy on a loopback port in front of a server, which a test can cut (every
/// connection closed, new ones refused) and restore.
pub(crate) struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub(crate) fn to(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listen");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        open2.lock().expect("proxy list").push(c);
                    }
                }
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    pipe(client, s2);
                    pipe(server, c2);
                }
            }
        });
        Proxy { port, up, open }
    }

    /// The server goes away: open connections are closed and new ones are refused.
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().expect("proxy list").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
