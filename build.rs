//! Embeds every descriptor under `schemas/resources/` and `schemas/data_sources/` into the
//! binary, so that adding a type is adding a file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: a build script compiled in another
    // copy of the repository would otherwise embed that copy's descriptors.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let root = Path::new(&manifest_dir).join("schemas");
    let mut out = String::new();
    for (constant, dir) in [("RESOURCE_FILES", "resources"), ("DATA_SOURCE_FILES", "data_sources")] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let _ = writeln!(out, "const {constant}: &[(&str, &str)] = &[");
        for path in files {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(out, "    ({stem:?}, include_str!({:?})),", path.display().to_string());
        }
        let _ = writeln!(out, "];");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned())).join("schemas.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
