//! Purpose: the server's settings, read once from the environment (Probot's names where they exist). Every missing
//! or invalid setting is reported as one line naming it; nothing else in the crate reads the environment.

pub use crate::callbacks::CallbackSettings;
pub use ops::{LogFormat, OpsSettings};

mod ops;
use crate::store::BackendKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A setting that is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    /// The environment variable.
    pub name: &'static str,
    /// What is wrong with it, and what is expected.
    pub problem: String,
}

/// How hard the outbox may push on GitHub (GITHUB-FACTS §7); lowered in tests, never raised past GitHub's limits.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// Minimum gap between two mutating requests to one installation while more are queued (GitHub: ≥ 1 s).
    pub mutation_spacing: Duration,
    /// Content-creating requests per rolling minute per installation (GitHub: 80).
    pub content_per_minute: u32,
    /// Content-creating requests per rolling hour per installation (GitHub: 500).
    pub content_per_hour: u32,
    /// Requests in flight at once across all installations (GitHub allows 100).
    pub max_in_flight: usize,
    /// A check run of a running job is updated at most this often (step changes and the end are always sent).
    pub check_run_update_interval: Duration,
    /// Per-request timeout for calls to GitHub.
    pub request_timeout: Duration,
    /// `RECONCILE_INTERVAL`: how often check runs of ended jobs are compared with GitHub (also once at start-up).
    pub reconcile_interval: Duration,
    /// `REDELIVERY_INTERVAL`: how often GitHub's list of webhook deliveries is read for ones that never arrived.
    pub redelivery_interval: Duration,
    /// `DISPATCH_POLL_FIRST`: how long after a dispatch step started its Actions run the run is first read, in
    /// case its `workflow_run.completed` webhook was lost (a poll is skipped once the webhook came).
    pub dispatch_poll_first: Duration,
    /// `DISPATCH_POLL_MAX`: the longest gap between two reads of such a run (the gap doubles up to it).
    pub dispatch_poll_max: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            mutation_spacing: Duration::from_secs(1),
            content_per_minute: 80,
            content_per_hour: 500,
            max_in_flight: 16,
            check_run_update_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(10 * 60),
            redelivery_interval: Duration::from_secs(5 * 60),
            dispatch_poll_first: Duration::from_secs(5 * 60),
            dispatch_poll_max: Duration::from_secs(30 * 60),
        }
    }
}

/// Everything `boomerang serve` needs to run.
#[derive(Clone)]
pub struct Settings {
    /// `APP_ID`: the GitHub App's numeric id (the JWT issuer).
    pub app_id: u64,
    /// `PRIVATE_KEY` (PEM text; `\n` escapes accepted) or the file at `PRIVATE_KEY_PATH`.
    pub private_key_pem: String,
    /// `WEBHOOK_SECRET`: the secret GitHub signs deliveries with.
    pub webhook_secret: String,
    /// `WEBHOOK_SECRET_PREVIOUS`: the secret before a rotation, still accepted on deliveries, job links and events
    /// tokens while it is set (see README, "Rotate the webhook secret").
    pub webhook_secret_previous: Option<String>,
    /// `SHUTDOWN_GRACE`: on SIGTERM, how long running steps may go on before they are stopped (default 30s).
    pub shutdown_grace: Duration,
    /// `GITHUB_API_URL`: GitHub's REST API root (default `https://api.github.com`).
    pub github_api_url: String,
    /// `DATA_DIR`: where the store, logs and job workspaces live (default `./data`).
    pub data_dir: PathBuf,
    /// `LISTEN`: the address the HTTP server binds (default `0.0.0.0:3000`).
    pub listen: SocketAddr,
    /// `PUBLIC_URL`: how people and GitHub reach this server, for links (default `http://localhost:<port>`).
    pub public_url: String,
    /// `STORE`: `redb` (default), `sled` or `postgres`.
    pub store: BackendKind,
    /// `DATABASE_URL`: the PostgreSQL database of `STORE=postgres` (`postgres://user@host:5432/db`).
    pub database_url: Option<String>,
    /// `STEP_PLACEMENT`: `worker` (default: steps run in the worker's process tree) or `fleet` (`STORE=postgres`:
    /// every replica's step agent claims steps from the database and runs them on its host).
    pub step_placement: crate::step_orders::StepPlacement,
    /// `STEP_SLOTS`: how many steps this replica's agent runs at once with `STEP_PLACEMENT=fleet` (default: the
    /// number of CPUs; 0: this replica runs none, e.g. a worker that only coordinates).
    pub step_slots: u32,
    /// `STEP_LEASE`: how long a replica's step agent counts as alive after each renewal (every second; default
    /// 10s): a replica that dies has its steps counted interrupted this long after.
    pub step_lease: Duration,
    /// `PEER_URL`: how the other replicas on the same database reach this one's HTTP listener, to forward what
    /// only the worker answers (default `http://[$FLY_PRIVATE_IP]:<port>` on Fly.io, else `http://127.0.0.1:<port>`).
    pub peer_url: String,
    /// `API_TOKENS`: comma-separated bearer tokens for the REST API and the web pages.
    pub api_tokens: Vec<String>,
    /// `KILL_GRACE`: time between SIGTERM and SIGKILL when a step is stopped (default 10s).
    pub kill_grace: Duration,
    /// `STEP_CGROUP`: `auto` (default: a cgroup v2 per step where the machine allows) or `off` (process group only).
    pub step_cgroup: crate::executor::StepCgroupMode,
    /// `MAX_LOG_BYTES_PER_JOB`: cap on a job's stored output (default 100 MiB).
    pub max_log_bytes_per_job: u64,
    /// `JOB_LINK_TTL`: how long a signed job-page link in a check run stays valid (default 90 days).
    pub job_link_ttl: Duration,
    /// `CHECK_RUN_UPDATE_INTERVAL` and the fixed GitHub pacing limits.
    pub pacing: Pacing,
    /// `SECRETS`, `BOOMERANG_SECRET_<NAME>`, `REDACT_MIN_LENGTH`, `LOG_RETENTION`: secrets and log keeping.
    pub logs: LogSettings,
    /// `CALLBACK_*`: how a job's `callback_url` is signed, guarded and retried.
    pub callbacks: CallbackSettings,
    /// `METRICS_TOKEN`, `METRICS_LISTEN`, `READY_OUTBOX_STUCK_AFTER`: how `/metrics` is reached, when `/readyz` fails.
    pub ops: OpsSettings,
}

/// Reads the `CALLBACK_*` settings.
fn callback_settings(
    get: impl Fn(&str) -> Option<String>,
) -> Result<CallbackSettings, SettingsError> {
    let d = CallbackSettings::default();
    let secret = get("CALLBACK_SECRET").map(|v| v.trim().to_string());
    if secret.as_ref().is_some_and(|v| v.len() < 16) {
        return Err(bad(
            "CALLBACK_SECRET",
            "must be at least 16 characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    let allow_private = match get("CALLBACK_ALLOW_PRIVATE").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(bad(
                "CALLBACK_ALLOW_PRIVATE",
                format!("`{v}` is not `true` or `false`"),
            ));
        }
    };
    let s = CallbackSettings {
        secret,
        allow_private,
        retry_initial: duration(
            "CALLBACK_RETRY_INITIAL",
            get("CALLBACK_RETRY_INITIAL"),
            d.retry_initial,
        )?,
        retry_for: duration("CALLBACK_RETRY_FOR", get("CALLBACK_RETRY_FOR"), d.retry_for)?,
        timeout: duration("CALLBACK_TIMEOUT", get("CALLBACK_TIMEOUT"), d.timeout)?,
    };
    for (name, value) in [
        ("CALLBACK_RETRY_INITIAL", s.retry_initial),
        ("CALLBACK_TIMEOUT", s.timeout),
    ] {
        if value.is_zero() {
            return Err(bad(name, "must be more than 0s"));
        }
    }
    Ok(s)
}

/// Secrets for steps, their redaction, and how long logs are kept.
#[derive(Clone)]
pub struct LogSettings {
    /// `(NAME, value)` pairs: each `BOOMERANG_SECRET_<NAME>` (the names listed in `SECRETS`, or every such
    /// variable when `SECRETS` is unset) reaches steps as the environment variable `NAME` and is redacted.
    pub secrets: Vec<(String, String)>,
    /// `REDACT_MIN_LENGTH`: shortest secret accepted (default 8); shorter ones are refused at start-up.
    pub redact_min_length: usize,
    /// `LOG_RETENTION`: logs not written for this long are deleted (default 30 days).
    pub retention: Duration,
    /// `SECRETS_KEY`: the key material secret parameter values are encrypted with in the store (unset: a key
    /// derived from the App's private key).
    pub secrets_key: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            secrets: Vec::new(),
            redact_min_length: crate::redact::DEFAULT_MIN_LENGTH,
            retention: Duration::from_secs(30 * 24 * 3600),
            secrets_key: None,
        }
    }
}

impl LogSettings {
    /// Reads the log settings; `SECRETS` is the comma-separated list of secret names.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<LogSettings, SettingsError> {
        let mut s = LogSettings::default();
        if let Some(v) = get("REDACT_MIN_LENGTH") {
            s.redact_min_length = v.trim().parse().map_err(|_| {
                bad(
                    "REDACT_MIN_LENGTH",
                    format!("`{v}` is not a number of characters"),
                )
            })?;
        }
        s.retention = duration("LOG_RETENTION", get("LOG_RETENTION"), s.retention)?;
        if let Some(key) = get("SECRETS_KEY") {
            if key.trim().len() < 32 {
                return Err(bad(
                    "SECRETS_KEY",
                    "must be at least 32 characters (e.g. `openssl rand -hex 32`)".to_string(),
                ));
            }
            s.secrets_key = Some(key.trim().to_string());
        }
        for name in get("SECRETS").unwrap_or_default().split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("SECRETS", format!("`{name}` is not a variable name")));
            }
            let var = format!("BOOMERANG_SECRET_{name}");
            let value = get(&var)
                .ok_or_else(|| bad("SECRETS", format!("names `{name}` but {var} is not set")))?;
            if value.len() < s.redact_min_length {
                return Err(bad(
                    "SECRETS",
                    format!(
                        "{var} is {} characters long, shorter than REDACT_MIN_LENGTH ({}): too short to \
                         redact without masking ordinary words",
                        value.len(),
                        s.redact_min_length
                    ),
                ));
            }
            s.secrets.push((name.to_string(), value));
        }
        Ok(s)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("app_id", &self.app_id)
            .field("github_api_url", &self.github_api_url)
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("store", &self.store)
            .field("peer_url", &self.peer_url)
            .field(
                "database_url",
                &self.database_url.as_deref().map(|_| {
                    crate::store::StoreTarget::new(
                        self.store,
                        &self.data_dir,
                        self.database_url.as_deref(),
                    )
                    .map(|t| t.to_string())
                    .unwrap_or_default()
                }),
            )
            .finish_non_exhaustive()
    }
}

fn bad(name: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        problem: problem.into(),
    }
}

fn duration(
    name: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, SettingsError> {
    match value {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v.trim())
            .or_else(|_| v.trim().parse::<u64>().map(Duration::from_secs))
            .map_err(|_| {
                bad(
                    name,
                    format!("`{v}` is not a duration (examples: 30s, 10m, 1h)"),
                )
            }),
    }
}

/// The shortest `WEBHOOK_SECRET` accepted: anything shorter can be guessed (GitHub's generated ones have 40).
pub const MIN_WEBHOOK_SECRET_LENGTH: usize = 16;

/// Where the server is reached, where it reaches GitHub and where it keeps its data: what setup mode needs before
/// the App's credentials exist, and part of every [`Settings`].
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `GITHUB_API_URL`, without a trailing slash.
    pub github_api_url: String,
    /// `DATA_DIR`.
    pub data_dir: PathBuf,
    /// `LISTEN`.
    pub listen: SocketAddr,
    /// `PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
}

impl Endpoints {
    /// Reads `GITHUB_API_URL`, `DATA_DIR`, `LISTEN` and `PUBLIC_URL` (empty values count as unset).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Endpoints, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let github_api_url =
            get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let parsed = url::Url::parse(&github_api_url).map_err(|e| {
            bad(
                "GITHUB_API_URL",
                format!("`{github_api_url}` is not a URL ({e})"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("GITHUB_API_URL", "must be an http(s) URL"));
        }
        let listen_text = get("LISTEN").unwrap_or_else(|| "0.0.0.0:3000".into());
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            bad(
                "LISTEN",
                format!("`{listen_text}` is not an address like 0.0.0.0:3000"),
            )
        })?;
        let public_url =
            get("PUBLIC_URL").unwrap_or_else(|| format!("http://localhost:{}", listen.port()));
        url::Url::parse(&public_url)
            .map_err(|e| bad("PUBLIC_URL", format!("`{public_url}` is not a URL ({e})")))?;
        Ok(Endpoints {
            github_api_url: github_api_url.trim_end_matches('/').to_string(),
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into())),
            listen,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }
}

impl Settings {
    /// Reads the settings through `var` (the process environment in production, a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let app_id = get("APP_ID").ok_or_else(|| {
            bad(
                "APP_ID",
                "required: the GitHub App's numeric id (App settings → About)",
            )
        })?;
        let app_id = app_id
            .trim()
            .parse::<u64>()
            .map_err(|_| bad("APP_ID", format!("`{app_id}` is not a number")))?;
        let private_key_pem = match (get("PRIVATE_KEY"), get("PRIVATE_KEY_PATH")) {
            (Some(pem), _) => pem.replace("\\n", "\n"),
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map_err(|e| bad("PRIVATE_KEY_PATH", format!("cannot read `{path}`: {e}")))?,
            (None, None) => {
                return Err(bad(
                    "PRIVATE_KEY",
                    "required (or PRIVATE_KEY_PATH): the App's private key in PEM format",
                ));
            }
        };
        jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
            bad(
                if get("PRIVATE_KEY").is_some() {
                    "PRIVATE_KEY"
                } else {
                    "PRIVATE_KEY_PATH"
                },
                format!("not an RSA private key in PEM format ({e})"),
            )
        })?;
        let webhook_secret = get("WEBHOOK_SECRET").ok_or_else(|| {
            bad(
                "WEBHOOK_SECRET",
                "required: the secret set on the App's webhook",
            )
        })?;
        if webhook_secret.trim().len() < MIN_WEBHOOK_SECRET_LENGTH {
            return Err(bad(
                "WEBHOOK_SECRET",
                format!(
                    "{} characters is too short to be secret (use at least {MIN_WEBHOOK_SECRET_LENGTH}, e.g. \
                     `openssl rand -hex 32`)",
                    webhook_secret.trim().len()
                ),
            ));
        }
        let Endpoints {
            github_api_url,
            data_dir,
            listen,
            public_url,
        } = Endpoints::from_lookup(get)?;
        let store = match get("STORE") {
            None => BackendKind::Redb,
            Some(s) => s.trim().parse().map_err(|e: String| bad("STORE", e))?,
        };
        let step_placement: crate::step_orders::StepPlacement = match get("STEP_PLACEMENT") {
            None => Default::default(),
            Some(v) => v.parse().map_err(|e: String| bad("STEP_PLACEMENT", e))?,
        };
        if step_placement == crate::step_orders::StepPlacement::Fleet
            && store != BackendKind::Postgres
        {
            return Err(bad(
                "STEP_PLACEMENT",
                "`fleet` needs STORE=postgres: the replicas share steps through the database",
            ));
        }
        let step_slots = match get("STEP_SLOTS") {
            None => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n <= 1024 => n,
                _ => {
                    return Err(bad(
                        "STEP_SLOTS",
                        format!("expected a number from 0 to 1024, not {v:?}"),
                    ));
                }
            },
        };
        let step_lease = duration("STEP_LEASE", get("STEP_LEASE"), Duration::from_secs(10))?;
        if step_lease < Duration::from_secs(3) {
            return Err(bad(
                "STEP_LEASE",
                "must be at least 3s (the agent renews it every second)",
            ));
        }
        let pool_size = match get("DATABASE_POOL_SIZE") {
            None => None,
            Some(v) => {
                Some(crate::store::parse_pool_size(&v).map_err(|e| bad("DATABASE_POOL_SIZE", e))?)
            }
        };
        let ca_file = get("DATABASE_CA_FILE")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        // Both ride in the URL (`sslrootcert=`, `pool_size=`), so every connection made from it has them.
        let database_url = get("DATABASE_URL")
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .map(|u| crate::store::with_settings(&u, ca_file.as_deref(), pool_size));
        if let Some(url) = &database_url
            && store == BackendKind::Postgres
            && let Err(e) = crate::store::PgTarget::parse(url)
        {
            return Err(bad("DATABASE_URL", e.to_string()));
        }
        if store == BackendKind::Postgres {
            match &database_url {
                None => {
                    return Err(bad(
                        "DATABASE_URL",
                        "STORE=postgres needs the database's URL (postgres://user@host:5432/db)"
                            .to_string(),
                    ));
                }
                Some(url) => {
                    if let Err(e) = url.parse::<crate::store::StoreTarget>() {
                        return Err(bad("DATABASE_URL", e));
                    }
                }
            }
        }
        // On Fly.io every machine has an address on the private network (`FLY_PRIVATE_IP`, IPv6).
        let peer_url = get("PEER_URL")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .or_else(|| {
                get("FLY_PRIVATE_IP").map(|ip| format!("http://[{}]:{}", ip.trim(), listen.port()))
            })
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", listen.port()));
        match url::Url::parse(&peer_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(bad(
                    "PEER_URL",
                    format!("`{peer_url}` is not an http(s) URL of a host"),
                ));
            }
        }
        let api_tokens: Vec<String> = get("API_TOKENS")
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(short) = api_tokens.iter().find(|t| t.len() < 16) {
            return Err(bad(
                "API_TOKENS",
                format!(
                    "a token of {} characters is too short to be secret (use at least 16)",
                    short.len()
                ),
            ));
        }
        let max_log_bytes_per_job = match get("MAX_LOG_BYTES_PER_JOB") {
            None => 100 * 1024 * 1024,
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                bad(
                    "MAX_LOG_BYTES_PER_JOB",
                    format!("`{v}` is not a number of bytes"),
                )
            })?,
        };
        let mut pacing = Pacing::default();
        pacing.check_run_update_interval = duration(
            "CHECK_RUN_UPDATE_INTERVAL",
            get("CHECK_RUN_UPDATE_INTERVAL"),
            pacing.check_run_update_interval,
        )?;
        pacing.reconcile_interval = duration(
            "RECONCILE_INTERVAL",
            get("RECONCILE_INTERVAL"),
            pacing.reconcile_interval,
        )?;
        pacing.redelivery_interval = duration(
            "REDELIVERY_INTERVAL",
            get("REDELIVERY_INTERVAL"),
            pacing.redelivery_interval,
        )?;
        pacing.dispatch_poll_first = duration(
            "DISPATCH_POLL_FIRST",
            get("DISPATCH_POLL_FIRST"),
            pacing.dispatch_poll_first,
        )?;
        pacing.dispatch_poll_max = duration(
            "DISPATCH_POLL_MAX",
            get("DISPATCH_POLL_MAX"),
            pacing.dispatch_poll_max,
        )?
        .max(pacing.dispatch_poll_first);
        for (name, value) in [
            ("RECONCILE_INTERVAL", pacing.reconcile_interval),
            ("REDELIVERY_INTERVAL", pacing.redelivery_interval),
            ("DISPATCH_POLL_FIRST", pacing.dispatch_poll_first),
        ] {
            if value < Duration::from_secs(1) {
                return Err(bad(name, "must be at least 1s"));
            }
        }
        Ok(Settings {
            app_id,
            private_key_pem,
            webhook_secret,
            webhook_secret_previous: get("WEBHOOK_SECRET_PREVIOUS").map(|v| v.trim().to_string()),
            shutdown_grace: duration(
                "SHUTDOWN_GRACE",
                get("SHUTDOWN_GRACE"),
                Duration::from_secs(30),
            )?,
            github_api_url,
            data_dir,
            listen,
            public_url,
            store,
            database_url,
            step_placement,
            step_slots,
            step_lease,
            peer_url,
            api_tokens,
            kill_grace: duration("KILL_GRACE", get("KILL_GRACE"), Duration::from_secs(10))?,
            step_cgroup: match get("STEP_CGROUP") {
                None => Default::default(),
                Some(v) => v.parse().map_err(|e: String| bad("STEP_CGROUP", e))?,
            },
            max_log_bytes_per_job,
            job_link_ttl: duration(
                "JOB_LINK_TTL",
                get("JOB_LINK_TTL"),
                Duration::from_secs(90 * 24 * 3600),
            )?,
            pacing,
            logs: LogSettings::from_lookup(get)?,
            callbacks: callback_settings(get)?,
            ops: OpsSettings::from_lookup(get, duration)?,
        })
    }

    /// Reads the settings from the process environment (when `SECRETS` is unset, every
    /// `BOOMERANG_SECRET_<NAME>` variable is a secret).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_env_or(|_| None)
    }

    /// Like [`Settings::from_env`], with `fallback` answering the names the environment leaves unset (the
    /// credentials file of setup mode: the environment wins).
    pub fn from_env_or(
        fallback: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| {
                k.to_str()?
                    .strip_prefix("BOOMERANG_SECRET_")
                    .map(str::to_string)
            })
            .collect();
        Settings::from_lookup(|name| match std::env::var(name).ok() {
            None if name == "SECRETS" => Some(names.join(",")),
            None => fallback(name),
            found => found,
        })
    }
}

#[cfg(test)]
mod tests;
