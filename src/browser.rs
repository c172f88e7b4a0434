//! Endpoint-side browser policy sync as a plan on one file: the policies a device's browser
//! must enforce, from its enrollment and its provider's active policies, rendered as the
//! browser's managed-policy file (Chrome and Edge JSON on Linux, a property list on macOS,
//! Firefox's `policies.json`). This module decides and renders; the command reads GovAPI and
//! writes the file.
//!
//! How a device's effective policy is computed, where `govapi.md` says nothing, is read the
//! safe way:
//! - Only an `active` enrollment of this device and user with the browser's provider receives
//!   policies; without one (pending, disabled, absent) the device gets none and thoth's file
//!   is removed.
//! - Every active policy of the provider applies to every enrolled device (the contract has
//!   no per-device scoping). A policy in `monitor` mode is reported and not written: it
//!   observes, it does not enforce. A policy without a mode enforces.
//! - Policies merge key by key, in the order of their names. Two enforced policies that set
//!   one key to different values are an error and the file is left as it is: the device
//!   never gets a guess.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Browser {
    Chrome,
    Edge,
    Firefox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    Linux,
    Macos,
}

impl Platform {
    pub fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::Macos
        } else {
            Platform::Linux
        }
    }
}

impl Browser {
    /// The GovAPI browser provider whose policies govern it.
    pub fn provider(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Edge => "edge",
            Browser::Firefox => "firefox",
        }
    }

    /// Where the browser reads managed policies from, and thoth's file there.
    pub fn location(self, platform: Platform) -> (PathBuf, &'static str) {
        match (self, platform) {
            (Browser::Chrome, Platform::Linux) => (PathBuf::from("/etc/opt/chrome/policies/managed"), "thoth.json"),
            (Browser::Edge, Platform::Linux) => (PathBuf::from("/etc/opt/edge/policies/managed"), "thoth.json"),
            (Browser::Firefox, Platform::Linux) => (PathBuf::from("/usr/lib/firefox/distribution"), "policies.json"),
            (Browser::Chrome, Platform::Macos) => {
                (PathBuf::from("/Library/Managed Preferences"), "com.google.Chrome.plist")
            }
            (Browser::Edge, Platform::Macos) => {
                (PathBuf::from("/Library/Managed Preferences"), "com.microsoft.Edge.plist")
            }
            (Browser::Firefox, Platform::Macos) => {
                (PathBuf::from("/Applications/Firefox.app/Contents/Resources/distribution"), "policies.json")
            }
        }
    }
}

/// One policy of the provider, and what became of it on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUse {
    pub policy_id: String,
    pub name: String,
    pub version: Option<i64>,
    pub enforcement_mode: String,
    /// Written into the file (enforced), as opposed to reported only (monitored).
    pub applied: bool,
}

/// What the device's browser must enforce.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The enrollment that entitles the device, when it has an active one.
    pub enrollment_id: Option<String>,
    pub policies: Vec<PolicyUse>,
    /// The merged managed policies; `None` when nothing applies (the file goes).
    pub merged: Option<Map<String, Json>>,
}

fn text<'a>(row: &'a Json, key: &str) -> &'a str {
    row.get(key).and_then(Json::as_str).unwrap_or_default()
}

/// The device's effective policy from its provider's enrollments and policies.
pub fn effective(
    enrollments: &[Json],
    policies: &[Json],
    device: &str,
    user: &str,
    browser: Browser,
) -> Result<Effective, String> {
    let provider = browser.provider();
    let enrollment = enrollments
        .iter()
        .filter(|e| text(e, "provider") == provider && text(e, "device_id") == device && text(e, "user_id") == user)
        .find(|e| text(e, "status") == "active");
    let Some(enrollment) = enrollment else {
        return Ok(Effective { enrollment_id: None, policies: Vec::new(), merged: None });
    };
    let mut active: Vec<&Json> = policies
        .iter()
        .filter(|p| text(p, "provider") == provider && p.get("active").and_then(Json::as_bool) != Some(false))
        .collect();
    active.sort_by(|a, b| (text(a, "name"), text(a, "policy_id")).cmp(&(text(b, "name"), text(b, "policy_id"))));
    let mut merged = Map::new();
    // Which policy set each key, for conflicts.
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut uses = Vec::new();
    for p in active {
        let mode = match text(p, "enforcement_mode") {
            "" => "enforce",
            m => m,
        };
        let applied = mode != "monitor";
        let name = text(p, "name").to_owned();
        uses.push(PolicyUse {
            policy_id: text(p, "policy_id").to_owned(),
            name: name.clone(),
            version: p.get("version").and_then(Json::as_i64),
            enforcement_mode: mode.to_owned(),
            applied,
        });
        if !applied {
            continue;
        }
        let Some(body) = p.get("policy").and_then(Json::as_object) else {
            return Err(format!("browser policy `{name}` holds no policy object"));
        };
        for (key, value) in body {
            match merged.get(key) {
                Some(existing) if existing != value => {
                    return Err(format!(
                        "browser policies `{}` and `{name}` set `{key}` to different values; the file is left as it is",
                        owner.get(key).cloned().unwrap_or_default()
                    ));
                }
                _ => {
                    merged.insert(key.clone(), value.clone());
                    owner.insert(key.clone(), name.clone());
                }
            }
        }
    }
    let enrollment_id = Some(text(enrollment, "enrollment_id").to_owned());
    Ok(Effective { enrollment_id, policies: uses, merged: Some(sorted(&merged)) })
}

fn sorted(map: &Map<String, Json>) -> Map<String, Json> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.into_iter().map(|k| (k.clone(), map[k].clone())).collect()
}

/// The file's content for the browser on the platform.
pub fn render(browser: Browser, platform: Platform, policies: &Map<String, Json>, device: &str) -> String {
    if platform == Platform::Macos && browser != Browser::Firefox {
        return plist(policies, device);
    }
    let doc = match browser {
        Browser::Firefox => {
            Json::Object([("policies".to_owned(), Json::Object(policies.clone()))].into_iter().collect())
        }
        _ => Json::Object(policies.clone()),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// A property list of the policies, marked as thoth's.
fn plist(policies: &Map<String, Json>, device: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<!-- Generated by thoth browser sync for device {}; it is rewritten on every sync. -->",
        xml_escape(device).replace("--", "- -")
    );
    out.push_str(
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
    );
    out.push_str("<plist version=\"1.0\">\n");
    plist_value(&mut out, &Json::Object(policies.clone()), 0);
    out.push_str("</plist>\n");
    out
}

fn plist_value(out: &mut String, value: &Json, depth: usize) {
    let pad = "\t".repeat(depth);
    match value {
        Json::Null => {}
        Json::Bool(b) => {
            let _ = writeln!(out, "{pad}<{b}/>");
        }
        Json::Number(n) if n.is_i64() || n.is_u64() => {
            let _ = writeln!(out, "{pad}<integer>{n}</integer>");
        }
        Json::Number(n) => {
            let _ = writeln!(out, "{pad}<real>{n}</real>");
        }
        Json::String(s) => {
            let _ = writeln!(out, "{pad}<string>{}</string>", xml_escape(s));
        }
        Json::Array(items) => {
            let _ = writeln!(out, "{pad}<array>");
            for item in items.iter().filter(|i| !i.is_null()) {
                plist_value(out, item, depth + 1);
            }
            let _ = writeln!(out, "{pad}</array>");
        }
        Json::Object(map) => {
            let _ = writeln!(out, "{pad}<dict>");
            let mut keys: Vec<&String> = map.keys().filter(|k| !map[*k].is_null()).collect();
            keys.sort();
            for k in keys {
                let _ = writeln!(out, "{pad}\t<key>{}</key>", xml_escape(k));
                plist_value(out, &map[k], depth + 1);
            }
            let _ = writeln!(out, "{pad}</dict>");
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn enrolled(status: &str) -> Vec<Json> {
        vec![
            json!({"enrollment_id": "enr-1", "provider": "chrome", "device_id": "dev-1", "user_id": "ana@example.com", "status": status}),
        ]
    }

    #[test]
    fn only_active_enrollments_get_the_enforced_policies_merged() {
        let policies = [
            json!({"policy_id": "p2", "name": "b-extensions", "provider": "chrome", "active": true, "enforcement_mode": "enforce", "policy": {"ExtensionInstallBlocklist": ["*"]}}),
            json!({"policy_id": "p1", "name": "a-baseline", "provider": "chrome", "active": true, "policy": {"IncognitoModeAvailability": 1}}),
            json!({"policy_id": "p3", "name": "c-watch", "provider": "chrome", "active": true, "enforcement_mode": "monitor", "policy": {"DownloadRestrictions": 3}}),
            json!({"policy_id": "p4", "name": "d-old", "provider": "chrome", "active": false, "policy": {"DownloadRestrictions": 4}}),
            json!({"policy_id": "p5", "name": "e-firefox", "provider": "firefox", "active": true, "policy": {"DisableTelemetry": true}}),
        ];
        let e = effective(&enrolled("active"), &policies, "dev-1", "ana@example.com", Browser::Chrome).expect("merged");
        assert_eq!(e.enrollment_id.as_deref(), Some("enr-1"));
        let merged = e.merged.expect("policies");
        assert_eq!(Json::Object(merged), json!({"ExtensionInstallBlocklist": ["*"], "IncognitoModeAvailability": 1}));
        assert_eq!(
            e.policies.iter().map(|p| (p.name.as_str(), p.applied)).collect::<Vec<_>>(),
            [("a-baseline", true), ("b-extensions", true), ("c-watch", false)]
        );
        for status in ["pending", "disabled"] {
            let none =
                effective(&enrolled(status), &policies, "dev-1", "ana@example.com", Browser::Chrome).expect("none");
            assert_eq!(none.merged, None);
        }
        let other_user =
            effective(&enrolled("active"), &policies, "dev-1", "bob@example.com", Browser::Chrome).expect("none");
        assert_eq!(other_user.merged, None);
    }

    #[test]
    fn conflicting_policies_are_refused() {
        let policies = [
            json!({"policy_id": "p1", "name": "a", "provider": "chrome", "policy": {"IncognitoModeAvailability": 1}}),
            json!({"policy_id": "p2", "name": "b", "provider": "chrome", "policy": {"IncognitoModeAvailability": 0}}),
        ];
        let e = effective(&enrolled("active"), &policies, "dev-1", "ana@example.com", Browser::Chrome);
        assert_eq!(
            e,
            Err("browser policies `a` and `b` set `IncognitoModeAvailability` to different values; the file is left as it is".to_owned())
        );
    }
}
