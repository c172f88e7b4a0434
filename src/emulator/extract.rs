//! Request extractors and body-field readers that answer every rejection with the JSON error
//! shape.
//!
//! axum's own extractors (`Json`, `Query`, `Path`) reject with plain-text bodies; the
//! wrappers here turn every rejection into an [`ApiError`]. `Body` also accepts a request
//! without `Content-Type`, because GovAPI clients only set it when they send a body. This module
//! never looks at the store.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::clock;
use super::error::ApiError;

/// A request body parsed as JSON; an empty body reads as JSON `null`.
pub(crate) struct Body(pub(crate) Value);

impl Body {
    /// The body as a JSON object, or a 400 naming what was sent instead.
    pub(crate) fn into_object(self) -> Result<Map<String, Value>, ApiError> {
        match self.0 {
            Value::Object(map) => Ok(map),
            other => Err(ApiError::invalid(format!("the request body must be a JSON object, got {}", kind(&other)))),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let is_json = content_type.to_str().is_ok_and(is_json_media_type);
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "request bodies must be JSON (`Content-Type: application/json`)",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()).with_message(rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))
    }
}

/// Whether a `Content-Type` value names JSON (`application/json`, `application/*+json`).
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The query string as a map; empty values are dropped, as GovAPI clients never send them.
pub(crate) struct QueryParams(pub(crate) BTreeMap<String, String>);

impl QueryParams {
    /// The value of `key`, if it was given and non-empty.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether a row whose field is `value` passes the filter `key`: it does when the filter
    /// is absent or equal to `value`.
    pub(crate) fn allows(&self, key: &str, value: &str) -> bool {
        match self.get(key) {
            None => true,
            Some(wanted) => wanted == value,
        }
    }

    /// Like [`QueryParams::allows`], ignoring ASCII case.
    pub(crate) fn allows_ignoring_case(&self, key: &str, value: &str) -> bool {
        match self.get(key) {
            None => true,
            Some(wanted) => wanted.eq_ignore_ascii_case(value),
        }
    }
}

impl QueryParams {
    /// An optional integer within `range`; anything else is a 400 naming the parameter.
    pub(crate) fn u64_in(&self, key: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, ApiError> {
        self.get(key).map(|text| parse_u64_in(key, text, &range)).transpose()
    }

    /// An optional `true`/`false`.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.get(key).map(|text| parse_bool(key, text)).transpose()
    }

    /// An optional finite, non-negative number.
    pub(crate) fn non_negative_f64(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => match text.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
                _ => Err(ApiError::invalid(format!("the `{key}` query parameter must be a non-negative number"))),
            },
        }
    }

    /// An optional value restricted to `allowed`.
    pub(crate) fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) if allowed.contains(&value) => Ok(Some(value.to_owned())),
            Some(value) => Err(ApiError::invalid(format!(
                "the `{key}` query parameter must be one of {}, got {value:?}",
                allowed.join(", ")
            ))),
        }
    }
}

fn parse_u64_in(key: &str, text: &str, range: &RangeInclusive<u64>) -> Result<u64, ApiError> {
    match text.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(format!(
            "`{key}` must be an integer from {} to {}, got {text:?}",
            range.start(),
            range.end()
        ))),
    }
}

fn parse_bool(key: &str, text: &str) -> Result<bool, ApiError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(format!("`{key}` must be `true` or `false`, got {text:?}"))),
    }
}

/// The parameters of an action that clients send either in the query string (Terraform, with
/// a JSON `null` body) or as a JSON object body (the operator), `govapi.md` §1.8. A key given
/// in both places takes the body's value.
pub(crate) struct ActionParams {
    query: BTreeMap<String, String>,
    body: Map<String, Value>,
}

impl ActionParams {
    /// Combines the query string with a body that is `null`, empty or a JSON object.
    pub(crate) fn new(query: QueryParams, body: Body) -> Result<Self, ApiError> {
        let body = match body.0 {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => {
                return Err(ApiError::invalid(format!(
                    "the request body must be a JSON object or null, got {}",
                    kind(&other)
                )))
            }
        };
        Ok(ActionParams { query: query.0, body })
    }

    /// An integer within `range`, or `default` when absent. The body may hold a number or a
    /// numeric string.
    pub(crate) fn u64_in(&self, key: &str, range: RangeInclusive<u64>, default: u64) -> Result<u64, ApiError> {
        match self.body.get(key).filter(|v| !v.is_null()) {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) if range.contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(format!(
                    "`{key}` must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ))),
            },
            Some(Value::String(text)) => parse_u64_in(key, text, &range),
            Some(other) => Err(wrong_type(key, "an integer", other)),
            None => match self.query.get(key).filter(|v| !v.is_empty()) {
                Some(text) => parse_u64_in(key, text, &range),
                None => Ok(default),
            },
        }
    }

    /// A boolean, or `default` when absent. The body may hold a boolean or `"true"`/`"false"`.
    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.body.get(key).filter(|v| !v.is_null()) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(text)) => parse_bool(key, text),
            Some(other) => Err(wrong_type(key, "a boolean", other)),
            None => match self.query.get(key).filter(|v| !v.is_empty()) {
                Some(text) => parse_bool(key, text),
                None => Ok(default),
            },
        }
    }

    /// An optional non-blank string.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        let value = match self.body.get(key).filter(|v| !v.is_null()) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => return Err(wrong_type(key, "a string", other)),
            None => self.query.get(key).cloned(),
        };
        Ok(value.filter(|text| !text.trim().is_empty()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
        let map = pairs.into_iter().filter(|(_, value)| !value.is_empty()).collect();
        Ok(QueryParams(map))
    }
}

/// Path parameters deserialized into `T` (a struct with one field per `{param}`).
pub(crate) struct PathParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(rejection) if rejection.status().is_server_error() => Err(ApiError::internal(rejection.body_text())),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Typed, validating access to the fields of a JSON request object.
///
/// A key that is absent and a key set to `null` read the same (`None`) everywhere here;
/// handlers that give `null` its own meaning (settings secrets) look at the map directly.
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl Fields<'_> {
    fn value(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// An optional string that, when given, is not blank.
    pub(crate) fn opt_non_empty_str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.opt_str(key)? {
            Some(s) if s.trim().is_empty() => Err(ApiError::invalid(format!("`{key}` must not be empty"))),
            other => Ok(other),
        }
    }

    /// A required string that is not blank.
    pub(crate) fn req_str(&self, key: &str) -> Result<String, ApiError> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::invalid(format!("`{key}` is required"))),
        }
    }

    /// An optional string restricted to `allowed`.
    pub(crate) fn opt_enum(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.opt_str(key)? {
            Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
            Some(s) => Err(ApiError::invalid(format!("`{key}` must be one of {}, got {s:?}", allowed.join(", ")))),
            None => Ok(None),
        }
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "a boolean", other)),
        }
    }

    /// An optional non-negative integer.
    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().map(Some).ok_or_else(|| ApiError::invalid(format!("`{key}` must be a non-negative integer")))
            }
            Some(other) => Err(wrong_type(key, "a non-negative integer", other)),
        }
    }

    /// An optional finite number.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(ApiError::invalid(format!("`{key}` must be a finite number"))),
            },
            Some(other) => Err(wrong_type(key, "a number", other)),
        }
    }

    /// An optional number within `min..=max`.
    pub(crate) fn opt_f64_in(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, ApiError> {
        match self.opt_f64(key)? {
            Some(x) if !(min..=max).contains(&x) => {
                Err(ApiError::invalid(format!("`{key}` must be between {min} and {max}, got {x}")))
            }
            other => Ok(other),
        }
    }

    /// An optional RFC 3339 timestamp.
    pub(crate) fn opt_timestamp(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.opt_str(key)? {
            Some(at) if !clock::is_rfc3339(&at) => {
                Err(ApiError::invalid(format!("`{key}` must be an RFC 3339 timestamp, got {at:?}")))
            }
            other => Ok(other),
        }
    }

    /// An optional JSON object.
    pub(crate) fn opt_object(&self, key: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(other) => Err(wrong_type(key, "a JSON object", other)),
        }
    }

    /// An optional list of non-blank strings.
    pub(crate) fn opt_str_list(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                    _ => Err(ApiError::invalid(format!("`{key}` must be a list of non-empty strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(wrong_type(key, "a list of strings", other)),
        }
    }
}

fn wrong_type(key: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(format!("`{key}` must be {expected}, got {}", kind(got)))
}

/// The JSON type name of a value, for error messages (never the value itself, which may be a
/// secret).
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
