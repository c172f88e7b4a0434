//! Security impact: whether a change loosens, tightens or does not touch the tenant's
//! security posture, from the attribute rules declared in the descriptors.
//!
//! An attribute without a rule is `Unknown`, and unknown is never treated as safe.

use std::collections::BTreeSet;

use crate::model::Value;
use crate::schema::Security;

/// Ordered so that the maximum of several impacts is the one a reviewer must see first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impact {
    Neutral,
    Tightens,
    Unknown,
    Loosens,
}

impl Impact {
    pub fn label(self) -> &'static str {
        match self {
            Impact::Neutral => "neutral",
            Impact::Tightens => "tightens",
            Impact::Unknown => "unknown",
            Impact::Loosens => "loosens",
        }
    }
}

/// The impact of one attribute going from `before` to `after` (`None` when unset or unknown;
/// secrets come as `None` on both sides and are judged by their rule alone).
pub fn of_attribute(rule: Option<&Security>, before: Option<&Value>, after: Option<&Value>) -> Impact {
    let Some(rule) = rule else { return Impact::Unknown };
    match rule {
        Security::Neutral => Impact::Neutral,
        Security::Order(levels) => {
            let rank = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| levels.iter().position(|l| l == s));
            match (rank(before), rank(after)) {
                (Some(b), Some(a)) if a > b => Impact::Tightens,
                (Some(b), Some(a)) if a < b => Impact::Loosens,
                (Some(_), Some(_)) => Impact::Neutral,
                // From nothing: the strictest level tightens, the loosest loosens.
                (None, Some(a)) if before.is_none() && a + 1 == levels.len() => Impact::Tightens,
                (None, Some(0)) if before.is_none() => Impact::Loosens,
                _ => Impact::Unknown,
            }
        }
        Security::Safe(safe) => match (before, after) {
            (Some(Value::Bool(b)), Some(Value::Bool(a))) if a == b => Impact::Neutral,
            (_, Some(Value::Bool(a))) if a == safe => Impact::Tightens,
            (_, Some(Value::Bool(_))) => Impact::Loosens,
            _ => Impact::Unknown,
        },
        Security::Ceiling | Security::Floor => match (before, after) {
            (Some(Value::Number(b)), Some(Value::Number(a))) if a == b => Impact::Neutral,
            (Some(Value::Number(b)), Some(Value::Number(a))) => {
                if (a > b) == matches!(rule, Security::Floor) {
                    Impact::Tightens
                } else {
                    Impact::Loosens
                }
            }
            // A new bound tightens; removing one loosens.
            (None | Some(Value::Null), Some(Value::Number(_))) => Impact::Tightens,
            (Some(Value::Number(_)), None | Some(Value::Null)) => Impact::Loosens,
            _ => Impact::Unknown,
        },
        Security::Document => {
            let doc = |v: Option<&Value>| match v {
                None | Some(Value::Null) => Some(serde_json::Value::Object(serde_json::Map::new())),
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(_) => None,
            };
            match (doc(before), doc(after)) {
                (Some(b), Some(a)) => of_document(&b, &a),
                _ => Impact::Unknown,
            }
        }
        Security::AllowList | Security::DenyList => {
            let items = |v: Option<&Value>| -> Option<BTreeSet<String>> {
                match v {
                    None | Some(Value::Null) => Some(BTreeSet::new()),
                    Some(Value::List(items)) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
                    _ => None,
                }
            };
            let (Some(b), Some(a)) = (items(before), items(after)) else { return Impact::Unknown };
            let added = a.difference(&b).next().is_some();
            let removed = b.difference(&a).next().is_some();
            let allow = matches!(rule, Security::AllowList);
            match (added, removed) {
                (false, false) => Impact::Neutral,
                (true, _) if allow => Impact::Loosens,
                (false, true) if allow => Impact::Tightens,
                (_, true) => Impact::Loosens,
                (true, false) => Impact::Tightens,
            }
        }
    }
}

/// Well-known enterprise browser policies (Chrome, Edge, Firefox) and what their values mean.
fn known_policy(key: &str) -> Option<Security> {
    let order = |levels: &[&str]| Some(Security::Order(levels.iter().map(|l| (*l).to_owned()).collect()));
    match key {
        // Chrome and Edge: 0 no restriction, 4 malicious, 1 dangerous, 2 potentially dangerous, 3 all.
        "DownloadRestrictions" => order(&["0", "4", "1", "2", "3"]),
        // 0 available, 2 forced, 1 disabled.
        "IncognitoModeAvailability" | "InPrivateModeAvailability" => order(&["0", "2", "1"]),
        // 1 allows the tools, 0 allows them except for force-installed extensions, 2 disallows them.
        "DeveloperToolsAvailability" => order(&["1", "0", "2"]),
        "SafeBrowsingProtectionLevel" => order(&["0", "1", "2"]),
        "PasswordManagerEnabled"
        | "AutofillCreditCardEnabled"
        | "AutofillAddressEnabled"
        | "BrowserSignin"
        | "SyncDisabled" => Some(Security::Safe(key == "SyncDisabled")),
        "SafeBrowsingEnabled"
        | "BlockThirdPartyCookies"
        | "DisableDeveloperTools"
        | "BlockAboutConfig"
        | "DisablePrivateBrowsing"
        | "DisableFirefoxAccounts"
        | "DisableTelemetry" => Some(Security::Safe(true)),
        "ExtensionInstallAllowlist"
        | "ExtensionInstallWhitelist"
        | "URLAllowlist"
        | "URLWhitelist"
        | "ExtensionAllowedTypes"
        | "PopupsAllowedForUrls"
        | "CookiesAllowedForUrls" => Some(Security::AllowList),
        "ExtensionInstallBlocklist"
        | "ExtensionInstallBlacklist"
        | "URLBlocklist"
        | "URLBlacklist"
        | "ExtensionInstallForcelist" => Some(Security::DenyList),
        _ => None,
    }
}

/// The rule a plainly named key carries: a `block_`, `deny_`, `require_`, `enforce_` or
/// `disable_` flag is safe when true, an `allow_` or `enable_` flag when false; a key naming
/// an allow list or a block list is one.
fn named_rule(key: &str) -> Option<Security> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    let strict = ["block", "deny", "require", "enforce", "disable", "prevent", "restrict", "forbid"];
    let lax = ["allow", "enable", "permit", "skip", "bypass"];
    let names = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if names(&["allowed", "allowlist", "allow_list", "whitelist", "permitted", "approved_"]) {
        return Some(Security::AllowList);
    }
    if names(&["blocked", "blocklist", "block_list", "denylist", "deny_list", "denied", "blacklist"]) {
        return Some(Security::DenyList);
    }
    if strict.iter().any(|w| lower.starts_with(&format!("{w}_")) || lower == *w) {
        return Some(Security::Safe(true));
    }
    if lax.iter().any(|w| lower.starts_with(&format!("{w}_")) || lower == *w) {
        return Some(Security::Safe(false));
    }
    None
}

/// The impact of a JSON document changing from `before` to `after`, key by key: the most
/// serious of its keys' impacts. A key without a rule whose value changes is unknown.
pub fn of_document(before: &serde_json::Value, after: &serde_json::Value) -> Impact {
    use serde_json::Value as Json;
    match (before, after) {
        (Json::Object(b), Json::Object(a)) => {
            let mut worst = Impact::Neutral;
            for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
                let (bv, av) = (b.get(key), a.get(key));
                if bv == av {
                    continue;
                }
                let rule = known_policy(key).or_else(|| named_rule(key));
                let impact = match (rule, bv, av) {
                    (Some(rule), _, _) if !matches!(bv.or(av), Some(Json::Object(_))) => {
                        // Numbers compare as their text, as the levels of an ordered policy.
                        let as_value = |v: Option<&Json>| {
                            v.map(|j| match j {
                                Json::Number(n) => Value::String(n.to_string()),
                                other => Value::from_json(other),
                            })
                        };
                        of_attribute(Some(&rule), as_value(bv).as_ref(), as_value(av).as_ref())
                    }
                    // A nested document (an extension's settings) is judged by its own keys.
                    (_, Some(Json::Object(_)) | None, Some(Json::Object(_)) | None) => {
                        let empty = Json::Object(serde_json::Map::new());
                        of_document(bv.unwrap_or(&empty), av.unwrap_or(&empty))
                    }
                    _ => Impact::Unknown,
                };
                worst = worst.max(impact);
            }
            worst
        }
        (b, a) if b == a => Impact::Neutral,
        _ => Impact::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|i| s(i)).collect())
    }

    #[test]
    fn rules() {
        let order = Security::Order(vec!["allow".into(), "step_up".into(), "block".into()]);
        assert_eq!(of_attribute(Some(&order), Some(&s("block")), Some(&s("step_up"))), Impact::Loosens);
        assert_eq!(of_attribute(Some(&order), Some(&s("allow")), Some(&s("block"))), Impact::Tightens);
        assert_eq!(of_attribute(Some(&order), None, Some(&s("block"))), Impact::Tightens);
        assert_eq!(of_attribute(Some(&order), Some(&s("bogus")), Some(&s("block"))), Impact::Unknown);
        let safe = Security::Safe(true);
        assert_eq!(of_attribute(Some(&safe), Some(&Value::Bool(true)), Some(&Value::Bool(false))), Impact::Loosens);
        assert_eq!(of_attribute(Some(&safe), None, Some(&Value::Bool(true))), Impact::Tightens);
        let allow = Security::AllowList;
        assert_eq!(of_attribute(Some(&allow), Some(&list(&["a"])), Some(&list(&["a", "b"]))), Impact::Loosens);
        assert_eq!(of_attribute(Some(&allow), Some(&list(&["a", "b"])), Some(&list(&["a"]))), Impact::Tightens);
        assert_eq!(of_attribute(Some(&allow), Some(&list(&["a"])), Some(&list(&["b"]))), Impact::Loosens);
        assert_eq!(of_attribute(Some(&Security::DenyList), Some(&list(&[])), Some(&list(&["x"]))), Impact::Tightens);
        assert_eq!(of_attribute(None, Some(&s("x")), Some(&s("y"))), Impact::Unknown);
        let (n3600, n7200) = (Value::Number(3600.0), Value::Number(7200.0));
        assert_eq!(of_attribute(Some(&Security::Ceiling), Some(&n3600), Some(&n7200)), Impact::Loosens);
        assert_eq!(of_attribute(Some(&Security::Floor), Some(&n3600), Some(&n7200)), Impact::Tightens);
        assert_eq!(of_attribute(Some(&Security::Ceiling), Some(&n7200), None), Impact::Loosens);
        assert_eq!(of_attribute(Some(&Security::Neutral), Some(&s("x")), Some(&s("y"))), Impact::Neutral);
    }

    #[test]
    fn documents_are_judged_key_by_key() {
        let doc = |text: &str| Some(s(text));
        let judge = |b: &str, a: &str| of_attribute(Some(&Security::Document), doc(b).as_ref(), doc(a).as_ref());
        assert_eq!(
            judge(r#"{"block_paste_of_secrets": true}"#, r#"{"block_paste_of_secrets": false}"#),
            Impact::Loosens
        );
        assert_eq!(
            judge(r#"{"block_paste_of_secrets": false}"#, r#"{"block_paste_of_secrets": true}"#),
            Impact::Tightens
        );
        assert_eq!(judge(r#"{"DownloadRestrictions": 3}"#, r#"{"DownloadRestrictions": 1}"#), Impact::Loosens);
        assert_eq!(
            judge(r#"{"IncognitoModeAvailability": 0}"#, r#"{"IncognitoModeAvailability": 1}"#),
            Impact::Tightens
        );
        assert_eq!(
            judge(r#"{"PasswordManagerEnabled": false}"#, r#"{"PasswordManagerEnabled": true}"#),
            Impact::Loosens
        );
        assert_eq!(
            judge(r#"{"ExtensionInstallAllowlist": ["a"]}"#, r#"{"ExtensionInstallAllowlist": ["a", "b"]}"#),
            Impact::Loosens
        );
        assert_eq!(judge(r#"{"URLBlocklist": ["x", "y"]}"#, r#"{"URLBlocklist": ["x"]}"#), Impact::Loosens);
        assert_eq!(judge(r#"{"allowed_domains": ["a"]}"#, r#"{"allowed_domains": ["a", "b"]}"#), Impact::Loosens);
        assert_eq!(judge(r#"{"title": "a"}"#, r#"{"title": "b"}"#), Impact::Unknown);
        assert_eq!(
            judge(r#"{"dlp": {"require_approval": true}}"#, r#"{"dlp": {"require_approval": false}}"#),
            Impact::Loosens
        );
        // A new document is judged against nothing: turning a block on tightens.
        assert_eq!(
            of_attribute(Some(&Security::Document), None, doc(r#"{"block_uploads": true}"#).as_ref()),
            Impact::Tightens
        );
        assert_eq!(judge(r#"{"a": 1}"#, r#"{"a": 1}"#), Impact::Neutral);
    }
}
