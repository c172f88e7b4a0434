//! The vocabulary shared by every stage: addresses, values and source positions.
//!
//! This module owns plain data only. It never does IO and never knows about serialization
//! formats; the state file, the wire types and the renderers convert at their own edges.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::vecmap::VecMap;

/// A value produced by evaluating configuration.
///
/// `Unknown` stands for a value that the control plane assigns during apply, or anything
/// computed from one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(VecMap<String, Value>),
    Unknown,
}

impl Value {
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_known),
            Value::Map(map) => map.values().all(Value::is_known),
            _ => true,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The name of this value's type as a user would write it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
        }
    }

    /// Converts to JSON. Unknown values have no JSON form and become `null`; callers check
    /// `is_known` first where that matters.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => {
                Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Whether this is the value `from_json` makes of `json`, found without making it.
    pub fn equals_json(&self, json: &serde_json::Value) -> bool {
        use serde_json::Value as Json;
        match (self, json) {
            (Value::Null, Json::Null) => true,
            (Value::Bool(a), Json::Bool(b)) => a == b,
            (Value::Number(a), Json::Number(n)) => *a == n.as_f64().unwrap_or(0.0),
            (Value::String(a), Json::String(b)) => a == b,
            (Value::List(a), Json::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals_json(y)),
            (Value::Map(a), Json::Object(b)) => {
                a.len() == b.len() && b.iter().all(|(k, v)| a.get(k).is_some_and(|x| x.equals_json(v)))
            }
            _ => false,
        }
    }
}

/// Integral numbers become JSON integers so that `1` is sent as `1`, not `1.0`.
pub fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Formats a number the way HCL prints it: integers without a fraction.
pub fn format_number(n: f64) -> String {
    match number_to_json(n) {
        serde_json::Value::Number(num) => num.to_string(),
        _ => n.to_string(),
    }
}

/// The address of a resource or data source instance, e.g. `thoth_fleet.prod`,
/// `thoth_fleet.region["eu"]` or `module.tenant["eu"].thoth_fleet.ring`. A block without
/// `count` or `for_each` has one instance and no key; so has a module call without them.
///
/// Inside the configuration (the graph, the declarations) a block is named by its address
/// without any key: `module.tenant.thoth_fleet.ring` stands for the block in every instance of
/// `module.tenant`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// The module instance the block belongs to, outermost first; empty for the root module.
    pub module: Vec<ModuleStep>,
    pub mode: Mode,
    pub type_name: String,
    pub name: String,
    pub key: Option<InstanceKey>,
}

/// One step of a module path: a module call and, for a call with `count` or `for_each`, the
/// instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleStep {
    pub name: String,
    pub key: Option<InstanceKey>,
}

/// Writes `module.a["x"].module.b.` for a module path (nothing for the root).
pub fn write_module_path(f: &mut impl fmt::Write, path: &[ModuleStep]) -> fmt::Result {
    for step in path {
        write!(f, "module.{}", step.name)?;
        write_key(f, step.key.as_ref())?;
        f.write_char('.')?;
    }
    Ok(())
}

fn write_key(f: &mut impl fmt::Write, key: Option<&InstanceKey>) -> fmt::Result {
    match key {
        None => Ok(()),
        Some(InstanceKey::Index(i)) => write!(f, "[{i}]"),
        Some(InstanceKey::Name(k)) => write!(f, "[{}]", serde_json::Value::String(k.clone())),
    }
}

/// The text of a module path without its trailing dot (`module.a["x"]`), empty for the root.
pub fn module_path_text(path: &[ModuleStep]) -> String {
    let mut text = String::new();
    let _ = write_module_path(&mut text, path);
    text.pop();
    text
}

/// Splits `name[key]` into the name and the parsed key.
fn split_key(text: &str) -> Option<(&str, Option<InstanceKey>)> {
    match text.find('[') {
        Some(i) => {
            let inner = text[i..].strip_prefix('[')?.strip_suffix(']')?;
            let key = if inner.starts_with('"') {
                InstanceKey::Name(serde_json::from_str::<String>(inner).ok()?)
            } else {
                InstanceKey::Index(inner.parse().ok()?)
            };
            Some((&text[..i], Some(key)))
        }
        None => Some((text, None)),
    }
}

/// Splits an address into its dot-separated parts, keeping quoted keys (which may hold dots)
/// whole.
fn address_parts(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut in_string, mut escaped, mut depth) = (0, false, false, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '[' if !in_string => depth += 1,
            ']' if !in_string => depth = depth.checked_sub(1)?,
            '.' if !in_string && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Managed,
    Data,
}

/// Which instance of a block with `count` (an index) or `for_each` (a key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceKey {
    Index(usize),
    Name(String),
}

impl Address {
    pub fn managed(type_name: &str, name: &str) -> Address {
        Address {
            module: Vec::new(),
            mode: Mode::Managed,
            type_name: type_name.to_owned(),
            name: name.to_owned(),
            key: None,
        }
    }

    #[must_use]
    pub fn with_key(&self, key: Option<InstanceKey>) -> Address {
        Address { key, ..self.clone() }
    }

    /// The address of the block this instance belongs to, in the same module instance.
    #[must_use]
    pub fn block(&self) -> Address {
        self.with_key(None)
    }

    /// The block as the configuration declares it: no instance key, in the module path
    /// without keys.
    #[must_use]
    pub fn config_block(&self) -> Address {
        Address {
            module: self.module.iter().map(|s| ModuleStep { name: s.name.clone(), key: None }).collect(),
            mode: self.mode,
            type_name: self.type_name.clone(),
            name: self.name.clone(),
            key: None,
        }
    }

    /// The same block in another module instance.
    #[must_use]
    pub fn in_module(&self, module: &[ModuleStep]) -> Address {
        Address { module: module.to_vec(), ..self.clone() }
    }

    /// Parses `type.name` and `data.type.name`, with an optional `[0]` or `["key"]` suffix,
    /// after any number of `module.name` or `module.name[key]` steps.
    pub fn parse(text: &str) -> Option<Address> {
        let parts = address_parts(text)?;
        let mut module = Vec::new();
        let mut rest = parts.as_slice();
        while let ["module", step, tail @ ..] = rest {
            let (name, key) = split_key(step)?;
            if name.is_empty() || tail.is_empty() {
                return None;
            }
            module.push(ModuleStep { name: name.to_owned(), key });
            rest = tail;
        }
        let (mode, t, n) = match rest {
            ["data", t, n] => (Mode::Data, *t, *n),
            [t, n] => (Mode::Managed, *t, *n),
            _ => return None,
        };
        let (n, key) = split_key(n)?;
        if t.is_empty() || n.is_empty() || t.contains('[') {
            return None;
        }
        Some(Address { module, mode, type_name: t.to_owned(), name: n.to_owned(), key })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_module_path(f, &self.module)?;
        if self.mode == Mode::Data {
            f.write_str("data.")?;
        }
        write!(f, "{}.{}", self.type_name, self.name)?;
        write_key(f, self.key.as_ref())
    }
}

/// A position in a loaded source file: the file's index in the source map and a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub file: usize,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: usize, range: std::ops::Range<usize>) -> Span {
        Span { file, start: range.start, end: range.end }
    }
}

/// A hash map keyed by configuration names (addresses, graph nodes), hashed with
/// `NameHasher`.
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;
/// A hash set of configuration names, hashed with `NameHasher`.
pub type NameSet<K> = HashSet<K, BuildHasherDefault<NameHasher>>;

/// A fast hash for names that come from the configuration being evaluated, not from an
/// adversary (the multiply-rotate scheme of rustc's FxHash). The standard SipHash of
/// addresses was a twentieth of evaluating a configuration of ten thousand resources.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::{Address, Value};

    #[test]
    fn a_value_equals_the_json_it_is_made_from_and_nothing_else() {
        let docs = [
            r#"null"#,
            r#"true"#,
            r#"1"#,
            r#"1.5"#,
            r#""x""#,
            r#"[]"#,
            r#"[1, "a", null]"#,
            r#"{}"#,
            r#"{"b": {"c": [true]}, "a": 1}"#,
            r#"{"a": 1, "b": {"c": [true]}}"#,
            r#"{"a": 1, "b": {"c": [false]}}"#,
            r#"{"a": 1}"#,
            r#"[1, "a"]"#,
        ];
        for a in docs {
            let value = Value::from_json(&serde_json::from_str(a).expect("json"));
            for b in docs {
                let json: serde_json::Value = serde_json::from_str(b).expect("json");
                assert_eq!(value.equals_json(&json), value == Value::from_json(&json), "{a} against {b}");
            }
        }
        assert!(!Value::Unknown.equals_json(&serde_json::Value::Null));
    }

    #[test]
    fn addresses_round_trip_through_text() {
        for text in [
            "thoth_fleet.prod",
            "thoth_fleet.prod[3]",
            "thoth_fleet.region[\"eu west\"]",
            "thoth_fleet.region[\"eu.west\"]",
            "data.thoth_fleets.all",
            "module.tenant.thoth_fleet.ring",
            "module.tenant[\"eu\"].module.inner[2].thoth_fleet.ring[\"a\"]",
            "module.tenant.data.thoth_fleets.all",
        ] {
            assert_eq!(Address::parse(text).map(|a| a.to_string()).as_deref(), Some(text));
        }
        let nested = Address::parse("module.tenant[\"eu\"].thoth_fleet.ring[1]").expect("address");
        assert_eq!(nested.config_block().to_string(), "module.tenant.thoth_fleet.ring");
        assert_eq!(nested.block().to_string(), "module.tenant[\"eu\"].thoth_fleet.ring");
        for bad in [
            "thoth_fleet",
            "a.b.c.d",
            "thoth_fleet.prod[x]",
            "thoth_fleet.prod[\"open",
            "module.x",
            "module..a.b",
            "a[0].b",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
    }
}
