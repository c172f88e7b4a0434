//! The secrets of this run (the org key, tokens, backend credentials, sensitive variable
//! values), so that diagnosis logs can be cleaned of them whatever a message says. Logs
//! already name objects and outcomes rather than values; this is the second line of defence.

use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not redacted: they would blank out ordinary words.
const MIN_LEN: usize = 6;

/// Remembers a secret of this run.
pub fn add(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    if let Ok(mut secrets) = SECRETS.write() {
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
            // Longest first, so that a secret containing another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// The text with every remembered secret replaced by `(sensitive value)`.
pub fn clean(text: &str) -> String {
    let Ok(secrets) = SECRETS.read() else { return String::from("(sensitive value)") };
    let mut out = text.to_owned();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "(sensitive value)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cleans_every_secret() {
        super::add("org-key-1234567");
        super::add("abc");
        assert_eq!(super::clean("key org-key-1234567 and abc"), "key (sensitive value) and abc");
    }
}
