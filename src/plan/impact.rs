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
}
