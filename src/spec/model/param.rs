//! Purpose: the declaration of a job parameter ([`ParamSpec`]): its type, constraints, default and whether it is
//! secret. Checking a request's values against it is [`crate::spec::JobSpec::resolve_params`].

use serde::{Deserialize, Serialize};

use crate::spec::ParamValue;

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
