//! Resolving the parameters of a job request against the job's declared parameters.
//!
//! Owns [`ResolvedParams`] (typed values, which of them are secret, their environment
//! variables) and [`ParamError`], whose `Display` is the short message shown to the user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::suggest::suggest;
use super::{JobSpec, ParamKind, ParamSpec, ParamValue};

/// One resolved parameter: its value and whether it must be redacted. Stored with a secret value sealed (see
/// [`super::sealed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredParam", from = "StoredParam")]
pub struct ResolvedParam {
    /// The typed value.
    pub value: ParamValue,
    /// Whether the parameter was declared `secret: true`.
    pub secret: bool,
}

/// How a [`ResolvedParam`] is serialized: a secret value as `sealed` (encrypted), others as `value`. A record
/// stored before sealing existed has a plain `value` for a secret too, and still loads.
#[derive(Serialize, Deserialize)]
struct StoredParam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<ParamValue>,
    secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

impl From<ResolvedParam> for StoredParam {
    fn from(p: ResolvedParam) -> StoredParam {
        let sealed = if p.secret {
            super::sealed::seal(&p.value)
        } else {
            None
        };
        match sealed {
            Some(sealed) => StoredParam {
                value: None,
                secret: true,
                sealed: Some(sealed),
            },
            None => StoredParam {
                value: Some(p.value),
                secret: p.secret,
                sealed: None,
            },
        }
    }
}

impl From<StoredParam> for ResolvedParam {
    fn from(p: StoredParam) -> ResolvedParam {
        let value = match (p.value, p.sealed) {
            (Some(v), _) => v,
            (None, Some(sealed)) => super::sealed::open(&sealed).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a secret parameter is unreadable; a re-run gets it empty");
                ParamValue::String(String::new())
            }),
            (None, None) => ParamValue::String(String::new()),
        };
        ResolvedParam {
            value,
            secret: p.secret,
        }
    }
}

/// The parameters of one job request, checked and with defaults applied.
///
/// Optional parameters without a default and not given are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResolvedParams(pub BTreeMap<String, ResolvedParam>);

impl ResolvedParams {
    /// The value of parameter `name`, if present.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name).map(|p| &p.value)
    }

    /// Whether parameter `name` is secret (and must be redacted).
    pub fn is_secret(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|p| p.secret)
    }

    /// The text of every secret value, for the redactor.
    pub fn secret_values(&self) -> Vec<String> {
        self.0
            .values()
            .filter(|p| p.secret)
            .map(|p| p.value.to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The environment variables a step gets: `BOOMERANG_PARAM_<NAME>` (upper case, `-` → `_`).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(name, p)| (env_var_name(name), p.value.to_string()))
            .collect()
    }

    /// The non-secret values as a JSON object (secrets are left out), for payloads sent to GitHub.
    pub fn public_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0
            .iter()
            .filter(|(_, p)| !p.secret)
            .map(|(n, p)| (n.clone(), p.value.to_json()))
            .collect()
    }
}

/// Environment variable carrying parameter `name`.
pub(crate) fn env_var_name(name: &str) -> String {
    format!(
        "BOOMERANG_PARAM_{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Why the parameters of a request were refused. `Display` is the message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A parameter the job does not declare.
    #[error("unknown parameter `{name}`{}", did_you_mean(.suggestion))]
    Unknown {
        /// The name given.
        name: String,
        /// The closest declared name.
        suggestion: Option<String>,
    },
    /// The same parameter given twice.
    #[error("parameter `{name}` is given more than once")]
    Duplicate {
        /// The name given twice.
        name: String,
    },
    /// A required parameter was not given.
    #[error("missing required parameter `{name}`")]
    Missing {
        /// The missing name.
        name: String,
    },
    /// A value that does not parse as the declared type.
    #[error("parameter `{name}` must be {expected}, not `{value}`")]
    Invalid {
        /// Parameter name.
        name: String,
        /// Description of the accepted values.
        expected: String,
        /// The value given.
        value: String,
    },
    /// An enum value outside the declared values.
    #[error("parameter `{name}` must be one of {}, not `{value}`{}", .allowed.join(", "), did_you_mean(.suggestion))]
    NotAllowed {
        /// Parameter name.
        name: String,
        /// The value given.
        value: String,
        /// The declared values.
        allowed: Vec<String>,
        /// The closest declared value.
        suggestion: Option<String>,
    },
    /// An integer outside the declared bounds.
    #[error("parameter `{name}` must be {}, not {value}", range_text(*.min, *.max))]
    OutOfRange {
        /// Parameter name.
        name: String,
        /// The value given.
        value: i64,
        /// Declared minimum.
        min: Option<i64>,
        /// Declared maximum.
        max: Option<i64>,
    },
    /// More than one problem; each is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ParamError>),
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

fn range_text(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "an integer".to_owned(),
    }
}

/// Parses a boolean as people type it in a comment.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_one(spec: &ParamSpec, raw: &str) -> Result<ParamValue, ParamError> {
    let name = spec.name.clone();
    match &spec.kind {
        ParamKind::String { .. } => Ok(ParamValue::String(raw.to_owned())),
        ParamKind::Bool { .. } => {
            parse_bool(raw)
                .map(ParamValue::Bool)
                .ok_or_else(|| ParamError::Invalid {
                    name,
                    expected: "true or false".to_owned(),
                    value: raw.to_owned(),
                })
        }
        ParamKind::Int { min, max, .. } => {
            let v: i64 = raw.trim().parse().map_err(|_| ParamError::Invalid {
                name: spec.name.clone(),
                expected: "an integer".to_owned(),
                value: raw.to_owned(),
            })?;
            if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                return Err(ParamError::OutOfRange {
                    name,
                    value: v,
                    min: *min,
                    max: *max,
                });
            }
            Ok(ParamValue::Int(v))
        }
        ParamKind::Enum { values, .. } => {
            if values.iter().any(|v| v == raw) {
                Ok(ParamValue::String(raw.to_owned()))
            } else {
                Err(ParamError::NotAllowed {
                    name,
                    value: raw.to_owned(),
                    allowed: values.clone(),
                    suggestion: suggest(raw, values.iter().map(String::as_str)).map(str::to_owned),
                })
            }
        }
    }
}

/// Checks `given` against `specs`: types, enum values, bounds, required, unknown names.
pub(crate) fn resolve(
    specs: &[ParamSpec],
    given: &[(String, String)],
) -> Result<ResolvedParams, ParamError> {
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut reported_twice = std::collections::BTreeSet::new();
    for (name, raw) in given {
        if !seen.insert(name.as_str()) {
            if reported_twice.insert(name.as_str()) {
                errors.push(ParamError::Duplicate { name: name.clone() });
            }
            continue;
        }
        let Some(spec) = specs.iter().find(|s| &s.name == name) else {
            errors.push(ParamError::Unknown {
                name: name.clone(),
                suggestion: suggest(name, specs.iter().map(|s| s.name.as_str())).map(str::to_owned),
            });
            continue;
        };
        match parse_one(spec, raw) {
            Ok(value) => {
                out.insert(
                    name.clone(),
                    ResolvedParam {
                        value,
                        secret: spec.secret,
                    },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    for spec in specs {
        if given.iter().any(|(n, _)| n == &spec.name) {
            continue;
        }
        if let Some(value) = spec.default_value() {
            out.insert(
                spec.name.clone(),
                ResolvedParam {
                    value,
                    secret: spec.secret,
                },
            );
        } else if spec.required {
            errors.push(ParamError::Missing {
                name: spec.name.clone(),
            });
        }
    }
    match errors.len() {
        0 => Ok(ResolvedParams(out)),
        1 => Err(errors.remove(0)),
        _ => Err(ParamError::Several(errors)),
    }
}

impl JobSpec {
    /// Checks request parameters against the declared ones and applies defaults.
    ///
    /// The error's `Display` is the short message shown to the user.
    pub fn resolve_params(&self, given: &[(String, String)]) -> Result<ResolvedParams, ParamError> {
        resolve(&self.params, given)
    }
}
