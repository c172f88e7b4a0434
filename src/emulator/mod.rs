//! The GovAPI emulator: a real HTTP server implementing the contract of `govapi.md`, used by
//! the tests, the examples and `thoth plan --embedded`.
//!
//! It owns everything on the server side of the wire: routing for any tenant under
//! `/{tenant}/thoth`, `/{tenant}/governance` and `/{tenant}/billing`, authentication, request
//! validation, the GovAPI error shape, and durable storage of every tenant's data under a data
//! directory (written atomically after every mutation, so a restart on the same directory
//! sees everything that was acknowledged).
//!
//! It must never share code with the GovAPI client in `crate::remote`: wire types, paths and
//! field names are written out again here from the contract, so that a client and an emulator
//! that disagree with `govapi.md` disagree with each other, and a test notices.
//!
//! Every endpoint of `govapi.md` is served (see `routes` for the areas). What only the
//! runtime creates on a real control plane (approvals, policy change artifacts, observed MCP
//! traffic) is created through emulator-only routes under `/{tenant}/_emulator/`, described in
//! `routes::seed`; they also hold switches such as making the primary evidence backfill path
//! answer 404 or 405. [`Faults`] in the configuration makes the tenant API routes slow,
//! failing, throttled or ambiguous, reproducibly from a seed (see `faults`).
//!
//! Layout: `routes` (one submodule per API area, plus the router), `store` (tenant data model
//! and persistence), `auth`, `error` (the JSON error type), `extract` (request extractors that
//! reject in JSON), `clock` (timestamps, ids, digests), `faults` (fault injection) and `net`
//! (the listener whose connections fault injection can drop).

mod auth;
mod clock;
mod error;
mod extract;
mod faults;
mod net;
mod routes;
mod store;

pub use self::faults::Faults;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`Emulator::shutdown`] waits for open connections before it stops the server anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What an emulator serves and where it keeps its data.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// The directory holding all tenants' data; created when missing.
    pub data_dir: PathBuf,
    /// The accepted credentials, as `X-Api-Key` values or bearer tokens; at least one.
    pub api_keys: Vec<String>,
    /// The faults to inject into tenant API requests; the default injects none.
    pub faults: Faults,
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("data_dir", &self.data_dir)
            .field("api_keys", &format_args!("[{} redacted]", self.api_keys.len()))
            .field("faults", &self.faults)
            .finish()
    }
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] also stops the server, but
/// without waiting for it.
pub struct Emulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `listen` (e.g. `"127.0.0.1:0"`), loads data from `data_dir` (creating it), and
    /// serves in a spawned tokio task.
    ///
    /// # Errors
    ///
    /// Fails when no API key is configured, when a fault rate is not between 0 and 1 or the
    /// throttle is 0, when the data directory cannot be created or read, when a data file is
    /// corrupt, or when the address cannot be bound.
    pub async fn start(config: EmulatorConfig, listen: &str) -> io::Result<Emulator> {
        let api_keys: Vec<String> =
            config.api_keys.into_iter().map(|key| key.trim().to_owned()).filter(|key| !key.is_empty()).collect();
        if api_keys.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the emulator needs at least one API key"));
        }
        config.faults.validate()?;
        let injector = faults::Injector::new(config.faults);
        let data_dir = config.data_dir;
        let store = tokio::task::spawn_blocking(move || store::Store::open(&data_dir))
            .await
            .map_err(|e| io::Error::other(format!("loading the emulator data failed: {e}")))??;
        let listener = net::FaultListener::new(TcpListener::bind(listen).await?);
        let addr = axum::serve::Listener::local_addr(&listener)?;
        let app = routes::router(routes::AppState::new(store, api_keys, injector))
            .into_make_service_with_connect_info::<net::ConnectionHandle>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means the `Emulator` is gone: stop as well.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Emulator { addr, stop: Some(stop), task: Some(task) })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use, such as `http://127.0.0.1:38211`. A wildcard bind address is
    /// replaced by the loopback address of the same family, which is connectable.
    #[must_use]
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting requests and waits (a few seconds at most) for open ones to finish.
    /// Data is already durable after every mutation, so nothing is flushed here.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
