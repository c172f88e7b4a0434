//! The one integration test binary: every test runs real processes, real files and real HTTP.

mod adoption;
mod agreement;
mod backends;
mod binding;
mod browser;
mod checks;
mod ci_kit;
mod cli;
mod data_sources;
mod diagnostics;
mod emulator;
mod emulator_more;
mod faults;
mod fidelity;
mod full;
mod inputs;
mod kill;
mod language;
mod lifecycle;
mod modules;
mod plans;
mod rollout;
mod servers;
mod support;
mod transport;
mod verify;
