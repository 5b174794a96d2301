//! Purpose: the environment settings of `boomerang serve`, as its `--help` lists them (README's "Configure the
//! server" table has the details; a test keeps the two lists the same).

/// The text after `boomerang serve --help`'s usage.
pub const SERVE_SETTINGS: &str = "\
Settings (environment variables; README \"Configure the server\" has the details):
  APP_ID                      the GitHub App's numeric id (or DATA_DIR/credentials.json)
  PRIVATE_KEY                 the App's private key, PEM (or PRIVATE_KEY_PATH, or the credentials file)
  PRIVATE_KEY_PATH            a file holding the PEM key
  WEBHOOK_SECRET              the secret GitHub signs deliveries with, at least 16 characters
  WEBHOOK_SECRET_PREVIOUS     the webhook secret before a rotation, also accepted while set
  GITHUB_API_URL              GitHub's REST root [default: https://api.github.com]
  DATA_DIR                    store, logs, workspaces, credentials.json [default: ./data]
  LISTEN                      the address to bind [default: 0.0.0.0:3000]
  PUBLIC_URL                  how browsers and GitHub reach this server [default: http://localhost:<port>]
  STORE                       redb, sled or postgres [default: redb]
  DATABASE_URL                with STORE=postgres: postgres://user@host:5432/db[?sslmode=verify-full]
  DATABASE_CA_FILE            PEM file of a private CA trusted for PostgreSQL's TLS [default: public roots only]
  DATABASE_POOL_SIZE          PostgreSQL connections of the store, 1 to 64 [default: 4]
  PEER_URL                    how other replicas reach this one [default: http://127.0.0.1:<port>]
  STEP_PLACEMENT              worker, or fleet: every replica runs steps (postgres) [default: worker]
  STEP_SLOTS                  steps this replica runs at once with fleet [default: CPUs]
  STEP_LEASE                  a replica's step agent counts as alive this long [default: 10s]
  API_TOKENS                  comma-separated bearer tokens for the API and job pages, 16+ characters each
  KILL_GRACE                  SIGTERM to SIGKILL when a step is stopped [default: 10s]
  SHUTDOWN_GRACE              how long running steps may finish after SIGTERM [default: 30s]
  STEP_CGROUP                 auto or off [default: auto]
  MAX_LOG_BYTES_PER_JOB       cap on a job's stored output [default: 104857600]
  JOB_LINK_TTL                life of the signed job-page link [default: 90d]
  CHECK_RUN_UPDATE_INTERVAL   most frequent check run update of a running job [default: 10s]
  RECONCILE_INTERVAL          how often ended jobs' check runs are compared with GitHub [default: 10m]
  REDELIVERY_INTERVAL         how often missed webhook deliveries are looked for [default: 5m]
  DISPATCH_POLL_FIRST         first read of a dispatched Actions run whose webhook is late [default: 5m]
  DISPATCH_POLL_MAX           longest gap between reads of such a run [default: 30m]
  SECRETS                     names of the server's secrets [default: every BOOMERANG_SECRET_*]
  BOOMERANG_SECRET_<NAME>     a secret value, seen by steps as NAME and redacted
  REDACT_MIN_LENGTH           shortest secret accepted [default: 8]
  SECRETS_KEY                 key material for secret parameters in the store [default: from the private key]
  CALLBACK_SECRET             HMAC key of callback signatures, 16+ characters
  CALLBACK_ALLOW_PRIVATE      let callbacks reach private addresses [default: false]
  CALLBACK_RETRY_INITIAL      wait after a callback's first failure [default: 10s]
  CALLBACK_RETRY_FOR          how long a callback is retried [default: 24h]
  CALLBACK_TIMEOUT            one callback try's limit [default: 10s]
  LOG_RETENTION               step logs not written for this long are deleted [default: 30d]
  RUST_LOG                    log filter [default: info]
  LOG_FORMAT                  text or json (one object per line) [default: text]
  METRICS_TOKEN               bearer token that serves /metrics on LISTEN, 16+ characters
  METRICS_LISTEN              a second address serving only /metrics, /healthz and /readyz
  READY_OUTBOX_STUCK_AFTER    /readyz fails while an outbox is stuck this long [default: 15m]

With none of APP_ID, PRIVATE_KEY, PRIVATE_KEY_PATH and WEBHOOK_SECRET set and no DATA_DIR/credentials.json,
serve starts in setup mode and prints a one-time link that registers the GitHub App. Environment settings win
over the credentials file. A missing or invalid setting exits 2 with one line naming it.";

#[cfg(test)]
mod tests {
    /// Every setting README's table documents is listed by `serve --help`, and nothing else is.
    #[test]
    fn help_lists_the_settings_readme_documents() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("## Configure the server")
            .expect("README has the settings section");
        let table: Vec<&str> = readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with("| name |"))
            .skip(2)
            .take_while(|l| l.starts_with("| `"))
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .collect();
        assert!(table.len() > 20, "the README table was found: {table:?}");
        let listed: Vec<&str> = super::SERVE_SETTINGS
            .lines()
            .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
            .collect();
        assert_eq!(listed, table);
    }
}
