//! The loader and evaluator: any bytes as `main.tf` (and as `terraform.tfvars`) are loaded,
//! evaluated and graphed as `thoth validate` does, and their diagnostics rendered. Nothing
//! may panic, and every input finishes within the fuzzer's time and memory limits.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("thoth-fuzz-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    // The first line of the input, when it starts with `#vars`, is the variable file.
    let (vars, config) = match data.strip_prefix(b"#vars ") {
        Some(rest) => {
            let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            (&rest[..end], rest.get(end + 1..).unwrap_or_default())
        }
        None => (&b""[..], data),
    };
    let _ = std::fs::write(dir.join("main.tf"), config);
    let _ = std::fs::write(dir.join("terraform.tfvars"), vars);
    let inputs = thoth::config::VarInputs { unknown_when_missing: true, ..Default::default() };
    // Loaded as for a plan, so that the settled resources are kept too.
    let (conf, diags) = thoth::evaluate::load(dir, &inputs, "default", None, true);
    let _ = thoth::render::diagnostics(&conf.module.files, &diags);
});
