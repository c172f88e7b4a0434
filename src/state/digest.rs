//! Digests of secret values, kept in states, journals and plan files in place of the values:
//! enough to tell whether a configured secret changed, and too costly to reverse.
//!
//! A digest is made under one of two schemes:
//!
//! - `hmac-sha256:<key id>:<hex>`, an HMAC under a key that never sits with the state: the
//!   `THOTH_DIGEST_KEY` environment variable, or the key file `thoth/digest.key` in the user's
//!   configuration directory (`$XDG_CONFIG_HOME`, else `~/.config`), which must be private
//!   (0600). Without the key, a stolen state or plan file gives nothing to test guesses
//!   against. The key id (a digest of the key) tells which key made it.
//! - `argon2id:<hex>` when no key is set: a memory-hard function (8 MiB, 2 passes), so that
//!   each guess costs milliseconds and megabytes instead of nanoseconds.
//!
//! The input holds the state's (or plan's) random salt, the object (its type and remote id,
//! which a `moved` block keeps) and the attribute, so that two equal secrets never show equal
//! digests. Digests of the earlier scheme (`sha256:`, salted only) are still recognised, and
//! are replaced by current ones on the next write.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest as _, Sha256};

/// The key of the keyed scheme and its id.
struct Key {
    bytes: Vec<u8>,
    id: String,
}

static KEY: OnceLock<Result<Option<Key>, String>> = OnceLock::new();

/// Digests computed in this run, by a hash of their inputs: the memory-hard scheme is slow on
/// purpose, and a plan digests the same value more than once.
static MEMO: OnceLock<Mutex<HashMap<[u8; 32], String>>> = OnceLock::new();

const KEY_VAR: &str = "THOTH_DIGEST_KEY";

fn key_file() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))?;
    Some(base.join("thoth").join("digest.key"))
}

fn load_key() -> Result<Option<Key>, String> {
    let from_env = match std::env::var(KEY_VAR) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().as_bytes().to_vec()),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => return Err(format!("{KEY_VAR} is not UTF-8 text")),
    };
    let bytes = match from_env {
        Some(b) => b,
        None => {
            let Some(path) = key_file() else { return Ok(None) };
            match crate::files::read_bytes(&path, 4096) {
                Ok(b) => {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode()).unwrap_or(0);
                        if mode & 0o077 != 0 {
                            return Err(format!(
                                "the digest key file `{}` is readable by others: `chmod 600` it",
                                path.display()
                            ));
                        }
                    }
                    String::from_utf8_lossy(&b).trim().as_bytes().to_vec()
                }
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(format!("cannot read the digest key file `{}`: {e}", path.display())),
            }
        }
    };
    if bytes.len() < 16 {
        return Err(format!("the digest key must be at least 16 characters long (set {KEY_VAR} to a random value)"));
    }
    let id =
        crate::state::hex(&Sha256::digest([b"thoth digest key id\0".as_slice(), &bytes].concat()))[..12].to_owned();
    crate::redact::add(&String::from_utf8_lossy(&bytes));
    Ok(Some(Key { bytes, id }))
}

/// Checks that the digest key, when one is configured, can be used: a run stops before it
/// writes anything with a key it cannot read.
pub fn check_key() -> Result<(), String> {
    KEY.get_or_init(load_key).as_ref().map(|_| ()).map_err(Clone::clone)
}

fn key() -> Option<&'static Key> {
    KEY.get_or_init(load_key).as_ref().ok().and_then(Option::as_ref)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn input(salt: &str, context: &[&str]) -> Vec<u8> {
    let mut out = salt.as_bytes().to_vec();
    for part in context {
        out.push(0);
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn hard(salt: &str, context: &[&str], value: &str) -> String {
    let base = input(salt, context);
    let memo_key: [u8; 32] = Sha256::digest([base.as_slice(), b"\0", value.as_bytes()].concat()).into();
    let memo = MEMO.get_or_init(Mutex::default);
    if let Some(found) = memo.lock().ok().and_then(|m| m.get(&memo_key).cloned()) {
        return found;
    }
    let params = argon2::Params::new(8 * 1024, 2, 1, Some(32)).unwrap_or_default();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let argon_salt = Sha256::digest(&base);
    let mut out = [0u8; 32];
    let digest = match argon.hash_password_into(value.as_bytes(), &argon_salt[..16], &mut out) {
        Ok(()) => format!("argon2id:{}", crate::state::hex(&out)),
        // The parameters are fixed and valid; should the library refuse them, a keyed digest
        // under a random key is at least never reversible (and never matches).
        Err(_) => format!("argon2id:{}", crate::state::hex(&crate::state::random_bytes::<32>())),
    };
    if let Ok(mut m) = memo.lock() {
        m.insert(memo_key, digest.clone());
    }
    digest
}

/// The digest of `value` under the current scheme.
pub fn make(salt: &str, context: &[&str], value: &str) -> String {
    match key() {
        Some(k) => {
            let mac = hmac_sha256(&k.bytes, &[input(salt, context).as_slice(), b"\0", value.as_bytes()].concat());
            format!("hmac-sha256:{}:{}", k.id, crate::state::hex(&mac))
        }
        None => hard(salt, context, value),
    }
}

/// Whether `recorded` is the digest of `value`; `None` when this run cannot tell (a keyed
/// digest made under another key, or a scheme this thoth does not know).
pub fn matches(salt: &str, context: &[&str], value: &str, recorded: &str) -> Option<bool> {
    if let Some(hex) = recorded.strip_prefix("sha256:") {
        // The earlier scheme: the salt and the value only.
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update([0u8]);
        h.update(value.as_bytes());
        return Some(crate::state::hex(&h.finalize()) == hex);
    }
    if let Some(rest) = recorded.strip_prefix("hmac-sha256:") {
        let (id, _) = rest.split_once(':')?;
        return key().filter(|k| k.id == id).map(|_| make(salt, context, value) == recorded);
    }
    if recorded.starts_with("argon2id:") {
        return Some(hard(salt, context, value) == recorded);
    }
    None
}

/// Whether `recorded` was made under the scheme this run uses (otherwise it is replaced on
/// the next write).
pub fn is_current(recorded: &str) -> bool {
    match key() {
        Some(k) => recorded.strip_prefix("hmac-sha256:").is_some_and(|r| r.starts_with(&format!("{}:", k.id))),
        None => recorded.starts_with("argon2id:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(crate::state::hex(&mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }

    #[test]
    fn equal_secrets_differ_by_object_and_attribute_and_match_themselves() {
        let a = make("salt", &["thoth_secret", "s1", "value"], "hunter22");
        let b = make("salt", &["thoth_secret", "s2", "value"], "hunter22");
        assert_ne!(a, b);
        assert_eq!(matches("salt", &["thoth_secret", "s1", "value"], "hunter22", &a), Some(true));
        assert_eq!(matches("salt", &["thoth_secret", "s1", "value"], "hunter23", &a), Some(false));
        assert!(is_current(&a));
        let legacy = format!("sha256:{}", crate::state::hex(&Sha256::digest(b"salt\0hunter22")));
        assert_eq!(matches("salt", &["x"], "hunter22", &legacy), Some(true));
        assert!(!is_current(&legacy));
        assert_eq!(matches("salt", &["x"], "hunter22", "hmac-sha256:0000:00"), None);
    }
}
