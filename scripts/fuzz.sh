#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ for SECONDS each (default 60): `loader` (configuration
# loading and evaluation) and `documents` (state files, saved plans, list answers). They are
# built as `cargo fuzz` builds them, with stable Rust. Each corpus starts from the repository's
# fixtures and examples; a crash is written to fuzz/artifacts/TARGET/ and makes this fail.
# For a long run: scripts/fuzz.sh 3600 (or `cargo fuzz run loader` where cargo-fuzz is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags="$flags -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags="$flags -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
RUSTFLAGS="$flags" cargo build --locked --release --manifest-path fuzz/Cargo.toml \
  --target "$triple" --target-dir target/fuzz
corpus="target/fuzz/corpus"
mkdir -p "$corpus/loader" "$corpus/documents"
find tests/fixtures examples fuzz/regressions/loader -name '*.tf' -size -64k -exec cp {} "$corpus/loader/" \; 2>/dev/null || true
find tests/fixtures examples fuzz/regressions/documents \( -name '*.json' -o -name '*.plan' \) -size -256k \
  -exec cp {} "$corpus/documents/" \; 2>/dev/null || true
for target in loader documents; do
  mkdir -p "fuzz/artifacts/$target"
  "target/fuzz/$triple/release/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
    -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 "$corpus/$target" 2>&1 | tail -n 8
done
