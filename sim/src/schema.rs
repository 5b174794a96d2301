//! Purpose: request-body validation: every body boomerang sends to an operation of the vendored OpenAPI subset is
//! checked against that operation's JSON Schema (with the OpenAPI-only `nullable` and `discriminator` rewritten or
//! dropped), and then against the documented limits the schema does not express (annotation counts, payload sizes, …).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

const OPENAPI: &str = include_str!("../fixtures/github-openapi-subset.json");

/// Longest `output.summary` / `output.text`.
const MAX_OUTPUT_CHARS: usize = 65_535;
/// Most annotations per request.
const MAX_ANNOTATIONS: usize = 50;
/// Most bytes in an annotation's `message` / `raw_details`.
const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
/// Longest `repository_dispatch` event type.
const MAX_EVENT_TYPE_CHARS: usize = 100;
/// Most top-level keys of `client_payload`.
const MAX_CLIENT_PAYLOAD_KEYS: usize = 10;
/// `client_payload` must serialise to less than this many bytes.
const MAX_CLIENT_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most `workflow_dispatch` inputs.
const MAX_INPUTS: usize = 25;
/// Most characters of serialised `workflow_dispatch` inputs.
const MAX_INPUTS_CHARS: usize = 65_535;

/// The compiled request-body validators, keyed by (method, OpenAPI path template).
pub(crate) struct BodySchemas {
    validators: HashMap<(String, String), jsonschema::Validator>,
}

static SCHEMAS: OnceLock<Result<BodySchemas, String>> = OnceLock::new();

impl BodySchemas {
    /// The validators, compiled once per process.
    pub(crate) fn get() -> Result<&'static BodySchemas, String> {
        SCHEMAS.get_or_init(load).as_ref().map_err(Clone::clone)
    }

    /// Validates `body` for the operation; `Ok` when the operation takes no validated body.
    pub(crate) fn validate(
        &self,
        method: &str,
        template: &str,
        body: &Value,
    ) -> Result<(), String> {
        let Some(validator) = self
            .validators
            .get(&(method.to_ascii_lowercase(), template.to_owned()))
        else {
            return Ok(());
        };
        let errors: Vec<String> = validator
            .iter_errors(body)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("For '{at}', {e}.")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}

fn load() -> Result<BodySchemas, String> {
    let doc: Value =
        serde_json::from_str(OPENAPI).map_err(|e| format!("OpenAPI subset does not parse: {e}"))?;
    let mut components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
    rewrite_openapi(&mut components);
    let mut validators = HashMap::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("OpenAPI subset has no paths")?;
    for (template, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else {
                continue;
            };
            let mut schema = schema.clone();
            rewrite_openapi(&mut schema);
            let root = json!({ "components": components, "allOf": [schema] });
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(true)
                .build(&root)
                .map_err(|e| format!("schema of {method} {template} does not compile: {e}"))?;
            validators.insert((method.to_ascii_lowercase(), template.clone()), validator);
        }
    }
    Ok(BodySchemas { validators })
}

/// Turns OpenAPI 3.0 schema objects into plain JSON Schema: `nullable: true` becomes "or null", `discriminator`
/// (OpenAPI-only, and unresolvable in `checks/create`) is dropped.
pub(crate) fn rewrite_openapi(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("discriminator");
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = std::mem::take(t);
                        map.insert("type".to_owned(), json!([t, "null"]));
                    }
                    Some(Value::Array(ts)) if !ts.contains(&json!("null")) => {
                        ts.push(json!("null"))
                    }
                    _ => {}
                }
                if let Some(Value::Array(values)) = map.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            for (key, child) in map.iter_mut() {
                if key == "properties" {
                    // Keys here are property names, not keywords: recurse into each property's schema.
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(rewrite_openapi);
                    }
                } else {
                    rewrite_openapi(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_openapi),
        _ => {}
    }
}

/// The kind of body, for the limits the schemas do not express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitedBody {
    CheckRunCreate,
    CheckRunUpdate,
    RepositoryDispatch,
    WorkflowDispatch,
}

/// GitHub's documented limits that the OpenAPI schemas leave out.
pub(crate) fn documented_limits(kind: LimitedBody, body: &Value) -> Result<(), String> {
    match kind {
        LimitedBody::CheckRunCreate | LimitedBody::CheckRunUpdate => check_run_limits(kind, body),
        LimitedBody::RepositoryDispatch => {
            let event_type = body
                .get("event_type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let chars = event_type.chars().count();
            if !(1..=MAX_EVENT_TYPE_CHARS).contains(&chars) {
                return Err(format!(
                    "event_type must be 1 to {MAX_EVENT_TYPE_CHARS} characters, got {chars}."
                ));
            }
            if let Some(payload) = body.get("client_payload").filter(|p| !p.is_null()) {
                let keys = payload.as_object().map_or(0, serde_json::Map::len);
                if keys > MAX_CLIENT_PAYLOAD_KEYS {
                    return Err(format!(
                        "client_payload has {keys} top-level properties; the maximum is {MAX_CLIENT_PAYLOAD_KEYS}."
                    ));
                }
                let size = payload.to_string().len();
                if size >= MAX_CLIENT_PAYLOAD_BYTES {
                    return Err(format!(
                        "client_payload is {size} bytes; it must be less than {MAX_CLIENT_PAYLOAD_BYTES}."
                    ));
                }
            }
            Ok(())
        }
        LimitedBody::WorkflowDispatch => {
            if let Some(inputs) = body.get("inputs").filter(|p| !p.is_null()) {
                let keys = inputs.as_object().map_or(0, serde_json::Map::len);
                if keys > MAX_INPUTS {
                    return Err(format!(
                        "inputs has {keys} properties; the maximum is {MAX_INPUTS}."
                    ));
                }
                let size = inputs.to_string().chars().count();
                if size > MAX_INPUTS_CHARS {
                    return Err(format!(
                        "inputs is {size} characters; the maximum is {MAX_INPUTS_CHARS}."
                    ));
                }
            }
            Ok(())
        }
    }
}

fn check_run_limits(kind: LimitedBody, body: &Value) -> Result<(), String> {
    let status = body.get("status").and_then(Value::as_str);
    if let Some(s @ ("waiting" | "requested" | "pending")) = status {
        return Err(format!("Only GitHub Actions can set a status of {s}."));
    }
    let conclusion = body.get("conclusion").and_then(Value::as_str);
    if conclusion == Some("stale") {
        return Err(
            "You cannot change a check run conclusion to stale, only GitHub can set this."
                .to_owned(),
        );
    }
    if kind == LimitedBody::CheckRunUpdate
        && conclusion.is_none()
        && (status == Some("completed") || body.get("completed_at").is_some_and(|c| !c.is_null()))
    {
        return Err(
            "conclusion is required when status is completed or completed_at is given.".to_owned(),
        );
    }
    if let Some(output) = body.get("output").filter(|o| !o.is_null()) {
        if kind == LimitedBody::CheckRunCreate
            && output.get("title").and_then(Value::as_str).is_none()
        {
            return Err("output.title is required.".to_owned());
        }
        for field in ["summary", "text"] {
            let chars = output
                .get(field)
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count());
            if chars > MAX_OUTPUT_CHARS {
                return Err(format!(
                    "output.{field} is {chars} characters; the maximum is {MAX_OUTPUT_CHARS}."
                ));
            }
        }
        let annotations = output.get("annotations").and_then(Value::as_array);
        let count = annotations.map_or(0, Vec::len);
        if count > MAX_ANNOTATIONS {
            return Err(format!(
                "output.annotations has {count} items; at most {MAX_ANNOTATIONS} are allowed per request."
            ));
        }
        for (i, a) in annotations.into_iter().flatten().enumerate() {
            annotation_limits(a).map_err(|e| format!("output.annotations[{i}]: {e}"))?;
        }
    }
    if let Some(actions) = body.get("actions").and_then(Value::as_array) {
        if actions.len() > 3 {
            return Err(format!(
                "actions has {} items; at most 3 are allowed.",
                actions.len()
            ));
        }
        for (i, a) in actions.iter().enumerate() {
            for (field, max) in [("label", 20), ("description", 40), ("identifier", 20)] {
                let chars = a
                    .get(field)
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.chars().count());
                if chars > max {
                    return Err(format!(
                        "actions[{i}].{field} is {chars} characters; the maximum is {max}."
                    ));
                }
            }
        }
    }
    Ok(())
}

fn annotation_limits(a: &Value) -> Result<(), String> {
    let title = a
        .get("title")
        .and_then(Value::as_str)
        .map_or(0, |s| s.chars().count());
    if title > 255 {
        return Err(format!("title is {title} characters; the maximum is 255."));
    }
    for field in ["message", "raw_details"] {
        let bytes = a.get(field).and_then(Value::as_str).map_or(0, str::len);
        if bytes > MAX_ANNOTATION_BYTES {
            return Err(format!(
                "{field} is {bytes} bytes; the maximum is {MAX_ANNOTATION_BYTES}."
            ));
        }
    }
    let start = a.get("start_line").and_then(Value::as_u64);
    let end = a.get("end_line").and_then(Value::as_u64);
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(format!("end_line {e} is before start_line {s}."));
        }
        let has_columns = a.get("start_column").is_some_and(|c| !c.is_null())
            || a.get("end_column").is_some_and(|c| !c.is_null());
        if has_columns && s != e {
            return Err(
                "start_column and end_column are only allowed when start_line equals end_line."
                    .to_owned(),
            );
        }
    }
    Ok(())
}
