//! The one integration test binary: every test runs real processes, real files and real HTTP.

mod emulator;
