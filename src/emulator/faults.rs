//! Fault injection: the network misbehaving the way real networks do, so that clients can be
//! tested against it.
//!
//! [`Faults`] is the configuration (part of `EmulatorConfig`); [`Injector`] applies it to every
//! tenant API request (paths under `/{tenant}/thoth`, `/{tenant}/governance` and
//! `/{tenant}/billing`), after authentication and never to the emulator-only routes. For each
//! request, in this order:
//!
//! 1. `latency_ms`: the answer is delayed, whatever it turns out to be; the request is carried
//!    out when it arrives, so a client that gives up waiting has had it done.
//! 2. `throttle_rps`: beyond N requests in the current one-second window (counted from the
//!    emulator's start), the answer is 429 `rate_limited` with `Retry-After: 1`, and nothing
//!    is done.
//! 3. `error_rate`: with this probability the answer is 503 `service_unavailable`, and
//!    nothing is done.
//! 4. `ambiguous_rate`: with this probability the request is carried out (and persisted), and
//!    then either answered 500 `internal_error` or its connection is dropped without any
//!    answer, half of the time each.
//!
//! Random draws come from a splitmix64 generator seeded with `seed`; every request that is not
//! throttled takes exactly three draws, so one run of sequential requests always meets the
//! same faults. Concurrent requests draw in arrival order, which the emulator does not
//! control. This module never touches the store.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::net::ConnectionHandle;
use super::routes::AppState;

/// The faults an emulator injects into tenant API requests. The default injects none.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Delay added to every answer, in milliseconds.
    pub latency_ms: u64,
    /// Probability (0–1) of answering 503 without doing the work.
    pub error_rate: f64,
    /// Probability (0–1) of doing the work and then answering 500 or dropping the connection.
    pub ambiguous_rate: f64,
    /// Requests allowed per one-second window before answering 429; `None` for no limit.
    pub throttle_rps: Option<u32>,
    /// Seed of the random draws, so that a run can be reproduced.
    pub seed: u64,
    /// Answer as a server that guesses does: browser providers echo their `config` and report
    /// `status: "connected"` unasked, browser policies and enrollments report `metadata: {}`,
    /// and MCP host patterns come back sorted without repeats. Clients must cope with both.
    pub guesses: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { latency_ms: 0, error_rate: 0.0, ambiguous_rate: 0.0, throttle_rps: None, seed: 0, guesses: false }
    }
}

impl Faults {
    /// Whether these settings inject anything at all.
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.latency_ms == 0
            && self.error_rate == 0.0
            && self.ambiguous_rate == 0.0
            && self.throttle_rps.is_none()
            && !self.guesses
    }

    /// Checks that the rates are probabilities and that a throttle allows at least one request.
    pub(crate) fn validate(&self) -> io::Result<()> {
        for (name, rate) in [("error_rate", self.error_rate), ("ambiguous_rate", self.ambiguous_rate)] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the fault `{name}` must be between 0 and 1, got {rate}"),
                ));
            }
        }
        if self.throttle_rps == Some(0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the fault `throttle_rps` must be at least 1"));
        }
        Ok(())
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Serve,
    Throttle,
    Fail,
    /// Do the work, then answer 500 (`drop: false`) or drop the connection (`drop: true`).
    Ambiguous {
        drop: bool,
    },
}

/// The fault state of one running emulator.
pub(crate) struct Injector {
    faults: Faults,
    started: Instant,
    state: Mutex<InjectorState>,
}

/// The mutable part, behind one lock so that draws and counts stay consistent.
struct InjectorState {
    rng: u64,
    /// The one-second window being counted (seconds since start) and its request count.
    window: u64,
    count: u32,
}

impl Injector {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = faults.seed;
        Injector { faults, started: Instant::now(), state: Mutex::new(InjectorState { rng, window: 0, count: 0 }) }
    }

    /// Whether to answer as a server that guesses (`Faults::guesses`).
    pub(crate) fn guesses(&self) -> bool {
        self.faults.guesses
    }

    /// Decides the fate of the next request.
    fn decide(&self) -> Fate {
        // A poisoned lock only means another request panicked mid-draw; the numbers are fine.
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(limit) = self.faults.throttle_rps {
            let window = self.started.elapsed().as_secs();
            if window != state.window {
                state.window = window;
                state.count = 0;
            }
            state.count = state.count.saturating_add(1);
            if state.count > limit {
                return Fate::Throttle;
            }
        }
        let error = unit(splitmix64(&mut state.rng));
        let ambiguous = unit(splitmix64(&mut state.rng));
        let drop = splitmix64(&mut state.rng) & 1 == 1;
        if error < self.faults.error_rate {
            Fate::Fail
        } else if ambiguous < self.faults.ambiguous_rate {
            Fate::Ambiguous { drop }
        } else {
            Fate::Serve
        }
    }
}

/// The next value of a splitmix64 generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw mapped uniformly onto `[0, 1)`.
fn unit(draw: u64) -> f64 {
    // The top 53 bits fit a float's mantissa exactly.
    (draw >> 11) as f64 / (1u64 << 53) as f64
}

/// Middleware on the tenant API routes: applies the emulator's faults.
pub(crate) async fn inject(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let injector = app.injector();
    if injector.faults.is_none() {
        return next.run(request).await;
    }
    // The request is carried out when it arrives and its answer leaves `latency_ms` later, as
    // over a slow network: a client that goes away while it waits has had the work done.
    let latency = Duration::from_millis(injector.faults.latency_ms);
    let mut dropped = None;
    let response = match injector.decide() {
        Fate::Serve => next.run(request).await,
        Fate::Throttle => {
            let limit = injector.faults.throttle_rps.unwrap_or_default();
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests: this emulator allows {limit} per second"),
            )
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Fate::Fail => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "injected fault: the service is unavailable and did nothing",
        )
        .into_response(),
        Fate::Ambiguous { drop } => {
            let connection = request.extensions().get::<ConnectInfo<ConnectionHandle>>().map(|info| info.0.clone());
            // The work is done and kept; only the answer is lost.
            let _ = next.run(request).await;
            match connection {
                Some(connection) if drop => {
                    dropped = Some(connection);
                    ApiError::internal("injected fault: the connection was dropped").into_response()
                }
                _ => ApiError::internal("injected fault: the request may or may not have been carried out")
                    .into_response(),
            }
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(connection) = dropped {
        connection.kill();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs for seed 0 of the reference implementation.
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn unit_draws_stay_below_one() {
        assert!(unit(u64::MAX) < 1.0);
        assert!(unit(0) == 0.0);
    }

    #[test]
    fn rates_must_be_probabilities() {
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.validate().is_err());
        assert!(Faults { ambiguous_rate: f64::NAN, ..Faults::default() }.validate().is_err());
        assert!(Faults { throttle_rps: Some(0), ..Faults::default() }.validate().is_err());
        assert!(Faults::default().validate().is_ok());
        assert!(Faults::default().is_none());
    }

    #[test]
    fn the_same_seed_meets_the_same_faults() {
        let faults = Faults { error_rate: 0.5, ambiguous_rate: 0.3, seed: 42, ..Faults::default() };
        let run = || {
            let injector = Injector::new(faults.clone());
            (0..50).map(|_| injector.decide()).collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert!(first.contains(&Fate::Fail) && first.contains(&Fate::Serve));
    }
}
