//! The readers of what thoth keeps and exchanges: state files, saved plans and list answers
//! of the control plane. Any bytes are refused with an error or read; nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thoth::state::State::from_bytes(data, "fuzz");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = thoth::planfile::PlanFile::from_text(text, "fuzz");
        let _ = thoth::remote::list_rows(serde_json::from_str(text).ok(), "data");
    }
});
