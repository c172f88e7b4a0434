//! `thoth` manages a whole Thoth tenant as code.
//!
//! HCL files are loaded and evaluated (`config`), ordered (`graph`), diffed against the
//! refreshed remote state (`plan`), rendered (`render`) and executed (`apply`) through the
//! GovAPI client (`remote`), while `state` records what was done. `emulator` is a real HTTP
//! server implementing the GovAPI contract, used by tests, examples and `--embedded`.

pub mod adopt;
pub mod apply;
pub mod browser;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod emulator;
pub mod evaluate;
pub mod files;
pub mod fmt;
pub mod graph;
pub mod model;
pub mod phase;
pub mod plan;
pub mod planfile;
pub mod redact;
pub mod remote;
pub mod render;
pub mod schema;
pub mod state;
pub mod synth;
pub mod vecmap;
pub mod verify;
