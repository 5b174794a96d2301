//! Purpose: the declaration of a job parameter ([`ParamSpec`]): its type, constraints, default and whether it is
//! secret. Checking a request's values against it is [`crate::spec::JobSpec::resolve_params`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// One declared job parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Parameter name, `[a-z][a-z0-9_-]{0,63}`.
    pub name: String,
    /// Shown in `/help`.
    pub description: Option<String>,
    /// Whether a request must give it (never together with a default).
    pub required: bool,
    /// Whether its value is redacted from logs and from GitHub.
    pub secret: bool,
    /// The type, with its constraints and default.
    pub kind: ParamKind,
}

impl ParamSpec {
    /// The default value, if the parameter has one.
    pub fn default_value(&self) -> Option<ParamValue> {
        match &self.kind {
            ParamKind::String { default } => default.clone().map(ParamValue::String),
            ParamKind::Bool { default } => default.map(ParamValue::Bool),
            ParamKind::Int { default, .. } => default.map(ParamValue::Int),
            ParamKind::Enum { default, .. } => default.clone().map(ParamValue::String),
        }
    }

    /// The type's name as written in the config (`string`, `bool`, `int`, `enum`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ParamKind::String { .. } => "string",
            ParamKind::Bool { .. } => "bool",
            ParamKind::Int { .. } => "int",
            ParamKind::Enum { .. } => "enum",
        }
    }
}

/// A parameter's type, its constraints and its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamKind {
    /// Free text.
    String {
        /// Default value.
        default: Option<String>,
    },
    /// `true` or `false`.
    Bool {
        /// Default value.
        default: Option<bool>,
    },
    /// A 64-bit integer, optionally bounded (inclusive).
    Int {
        /// Default value.
        default: Option<i64>,
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
    /// One of a fixed list of strings.
    Enum {
        /// The accepted values.
        values: Vec<String>,
        /// Default value (one of `values`).
        default: Option<String>,
    },
}

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `true`/`false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text (also the value of an `enum` parameter).
    String(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
        }
    }
}

impl ParamValue {
    /// The value as JSON, for the dispatch payload and the API.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::String(s) => serde_json::Value::String(s.clone()),
            ParamValue::Bool(b) => serde_json::Value::Bool(*b),
            ParamValue::Int(i) => serde_json::Value::from(*i),
        }
    }
}
