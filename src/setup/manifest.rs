//! Purpose: the GitHub App manifest boomerang registers itself with: `app-manifest.yml` (compiled in, so the binary
//! and the file in the repository cannot disagree) rendered to the JSON GitHub's manifest flow takes, with every URL
//! pointed at `PUBLIC_URL`: the homepage, the webhook, the redirect back to `/setup/callback` and the callback URL
//! (GITHUB-FACTS §6). `boomerang setup --print-manifest` prints it; the setup page posts it.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value, json};

/// `app-manifest.yml`, as committed.
pub const MANIFEST_YAML: &str = include_str!("../../app-manifest.yml");
/// Where GitHub sends the browser back with the one-time code (step 2 of the flow).
pub const CALLBACK_PATH: &str = "/setup/callback";

/// The manifest as JSON, its URLs pointed at `public_url` (no trailing slash).
pub fn render(public_url: &str) -> anyhow::Result<Value> {
    let docs = Yaml::load_from_str(MANIFEST_YAML)
        .map_err(|e| anyhow::anyhow!("app-manifest.yml is not YAML: {e}"))?;
    let Some(Value::Object(mut manifest)) = docs.first().map(to_json) else {
        anyhow::bail!("app-manifest.yml is not a mapping");
    };
    let base = public_url.trim_end_matches('/');
    manifest.insert("url".into(), json!(base));
    manifest.insert(
        "hook_attributes".into(),
        json!({"url": format!("{base}{}", crate::webhook::WEBHOOK_PATH), "active": true}),
    );
    manifest.insert(
        "redirect_url".into(),
        json!(format!("{base}{CALLBACK_PATH}")),
    );
    manifest.insert("callback_urls".into(), json!([base]));
    Ok(Value::Object(manifest))
}

/// A YAML node as JSON (the manifest uses mappings, sequences, strings and booleans).
fn to_json(node: &Yaml<'_>) -> Value {
    match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Representation(s, _, _) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => to_json(inner),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_points_at_public_url_and_the_rest_is_the_file() {
        let m = render("https://ci.example.com/").expect("renders");
        assert_eq!(m["url"], "https://ci.example.com");
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://ci.example.com/api/github/webhooks"
        );
        assert_eq!(m["redirect_url"], "https://ci.example.com/setup/callback");
        assert_eq!(m["callback_urls"], json!(["https://ci.example.com"]));
        assert_eq!(m["default_permissions"]["checks"], "write");
        assert_eq!(m["public"], false);
        let events = m["default_events"].as_array().expect("events");
        assert!(events.iter().any(|e| e == "issue_comment"));
        assert!(!m.to_string().contains("YOUR-HOST"));
    }

    /// The comments cite files of this repository that exist, or GitHub's documentation by URL: no design note
    /// that is not in the repository.
    #[test]
    fn the_manifest_cites_only_what_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cited = 0;
        for word in MANIFEST_YAML.split(|c: char| c.is_whitespace() || "(),;`".contains(c)) {
            let word = word.trim_end_matches(['.', ':']);
            if word.starts_with("src/") {
                assert!(root.join(word).exists(), "app-manifest.yml cites {word}");
                cited += 1;
            } else if word.contains("://") && !word.contains("YOUR-HOST") {
                assert!(word.starts_with("https://docs.github.com/"), "{word}");
            }
        }
        assert!(cited > 3);
        assert!(!MANIFEST_YAML.contains('§') && !MANIFEST_YAML.contains("GITHUB-FACTS"));
    }
}
