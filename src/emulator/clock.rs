//! Server-side values the emulator makes up: timestamps, generated ids and digests.
//!
//! Timestamps are RFC 3339 in UTC with whole seconds (`2026-11-28T17:42:00Z`), formatted here
//! from `SystemTime` so that the crate needs no date library. Ids are random hex with a prefix
//! per kind (`job_`, `pol_`, ...). This module never touches the store or the network.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::error::ApiError;

/// The timestamp a document carries when it was never written (the Unix epoch).
pub(crate) const NEVER: &str = "1970-01-01T00:00:00Z";

/// The current time as an RFC 3339 UTC timestamp.
pub(crate) fn now() -> String {
    format_rfc3339(SystemTime::now())
}

/// The current time in whole seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The timestamp `secs` seconds before now, clamped to the epoch.
///
/// Every timestamp the emulator writes has the same fixed-width UTC shape, so comparing two of
/// them as strings compares them in time; window filters rely on that.
pub(crate) fn seconds_ago(secs: u64) -> String {
    format_unix_seconds(now_unix().saturating_sub(secs))
}

/// The timestamp `secs` seconds after now.
pub(crate) fn seconds_from_now(secs: u64) -> String {
    format_unix_seconds(now_unix().saturating_add(secs))
}

/// Whether `text` has exactly the shape the emulator writes (`2026-11-28T17:42:00Z`), which
/// compares correctly as a string against the emulator's own timestamps.
pub(crate) fn is_canonical(text: &str) -> bool {
    text.len() == 20 && text.ends_with('Z') && is_rfc3339(text)
}

/// Formats a point in time as `YYYY-MM-DDTHH:MM:SSZ`, clamping times before 1970 to the epoch.
pub(crate) fn format_rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_unix_seconds(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_unix_seconds(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Converts a count of days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days` algorithm, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` is an RFC 3339 timestamp (`2026-11-28T17:42:00Z`, optional fraction, `Z` or a
/// `+HH:MM`/`-HH:MM` offset). Only the shape and the field ranges are checked.
pub(crate) fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let number =
        |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<u32>().ok()).unwrap_or(u32::MAX);
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let ranges_ok = (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) <= 23
        && number(14..16) <= 59
        && number(17..19) <= 60;
    let mut rest = &b[19..];
    if let Some((b'.', tail)) = rest.split_first() {
        let fraction = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        rest = &tail[fraction..];
    }
    let zone_ok = match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (u32::from(*h1 - b'0') * 10 + u32::from(*h2 - b'0')) <= 23
                && (u32::from(*m1 - b'0') * 10 + u32::from(*m2 - b'0')) <= 59
        }
        _ => false,
    };
    ranges_ok && zone_ok
}

/// A new random id such as `job_3f9a0c1d2e4b5a69`.
pub(crate) fn new_id(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("cannot generate an id: {e}")))?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// The lowercase hex SHA-256 digest of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Random lowercase hex of `len` bytes, for secrets such as API keys.
pub(crate) fn random_hex(len: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("cannot generate random bytes: {e}")))?;
    Ok(hex(&bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix_seconds(0), NEVER);
        assert_eq!(format_unix_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_seconds(1_795_887_720), "2026-11-28T17:42:00Z");
        assert_eq!(format_unix_seconds(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn recognises_rfc3339() {
        for ok in [NEVER, "2026-11-28T17:42:00.123Z", "2026-11-28T17:42:00+05:30"] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-11-28",
            "2026-13-28T17:42:00Z",
            "2026-11-28T17:42:00",
            "2026-11-28T17:42:00.Z",
            "2026-11-28T17:42:00+5:30",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
