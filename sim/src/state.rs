//! Purpose: the simulator's world: everything GitHub would know (installations, repositories, branches, files, pull
//! requests, roles, issued tokens, check runs, deliveries) plus what the sim recorded (calls, violations) and the
//! fault and rate-limit bookkeeping. Plain data behind one mutex; no I/O here.

use std::collections::{BTreeMap, HashMap, HashSet};

use jsonwebtoken::DecodingKey;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::config::SimConfig;
use crate::fault::{Fault, FaultKind};
use crate::rate::{RateKey, RateState};
use crate::records::{
    CheckRunRecord, CommentRecord, DeliveryRecord, DispatchRecord, ReactionRecord, RecordedCall,
    WorkflowDispatchRecord, WorkflowRunRecord,
};

/// An installation of the app on an account.
#[derive(Debug, Clone)]
pub(crate) struct Installation {
    /// The account (organisation or user) it is installed on.
    pub(crate) account: String,
}

/// A pull request: only what boomerang reads.
#[derive(Debug, Clone)]
pub(crate) struct Pull {
    /// The head commit.
    pub(crate) head_sha: String,
    /// The head branch.
    pub(crate) head_ref: String,
    /// `owner/name` of the head repository (another one for a fork).
    pub(crate) head_repo_full_name: String,
}

/// A repository and everything done to it.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    /// The repository id.
    pub(crate) id: u64,
    /// The installation that reaches it.
    pub(crate) installation_id: u64,
    /// `owner/name` as given.
    pub(crate) full_name: String,
    /// The default branch.
    pub(crate) default_branch: String,
    /// Branch → commit sha.
    pub(crate) branches: BTreeMap<String, String>,
    /// Every commit sha the repository has (lower case).
    pub(crate) known_shas: HashSet<String>,
    /// ref as given to `set_file` (branch or sha) → path → content.
    pub(crate) files: HashMap<String, BTreeMap<String, String>>,
    /// Pull requests by number.
    pub(crate) pulls: BTreeMap<u64, Pull>,
    /// lower-case login → (login as given, role).
    pub(crate) roles: HashMap<String, (String, String)>,
    /// Check runs the app created, oldest first.
    pub(crate) check_runs: Vec<CheckRunRecord>,
    /// Repository dispatches the app sent.
    pub(crate) dispatches: Vec<DispatchRecord>,
    /// Workflow dispatches the app sent.
    pub(crate) workflow_dispatches: Vec<WorkflowDispatchRecord>,
    /// The workflow runs those dispatches started.
    pub(crate) workflow_runs: Vec<WorkflowRunRecord>,
    /// Reactions the app added.
    pub(crate) reactions: Vec<ReactionRecord>,
    /// Comments the app posted.
    pub(crate) comments: Vec<CommentRecord>,
}

impl Repo {
    /// The owner part of the full name.
    pub(crate) fn owner(&self) -> &str {
        self.full_name
            .split_once('/')
            .map_or(self.full_name.as_str(), |(o, _)| o)
    }

    /// The name part of the full name.
    pub(crate) fn name(&self) -> &str {
        self.full_name
            .split_once('/')
            .map_or(self.full_name.as_str(), |(_, n)| n)
    }

    /// Resolves a branch name (optionally `refs/heads/…`) or a known sha to a commit sha.
    pub(crate) fn resolve(&self, git_ref: &str) -> Option<String> {
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        if let Some(sha) = self.branches.get(branch) {
            return Some(sha.clone());
        }
        let lower = git_ref.to_ascii_lowercase();
        if self.known_shas.contains(&lower) {
            return Some(lower);
        }
        None
    }

    /// The file at `path` as seen from `git_ref` (a branch or a sha), looking through both names of a commit.
    pub(crate) fn file_at(&self, git_ref: &str, path: &str) -> Option<&String> {
        self.refs_for(git_ref)
            .iter()
            .find_map(|r| self.files.get(r).and_then(|files| files.get(path)))
    }

    /// Paths directly or indirectly under `dir` as seen from `git_ref`.
    pub(crate) fn files_under(&self, git_ref: &str, dir: &str) -> BTreeMap<String, String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = BTreeMap::new();
        for r in self.refs_for(git_ref).iter().rev() {
            if let Some(files) = self.files.get(r) {
                for (p, c) in files.range(prefix.clone()..) {
                    if !p.starts_with(&prefix) {
                        break;
                    }
                    out.insert(p.clone(), c.clone());
                }
            }
        }
        out
    }

    /// Every key under which files of this ref may have been stored: the ref itself, the sha it names, and the
    /// branches pointing at that sha.
    fn refs_for(&self, git_ref: &str) -> Vec<String> {
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        let mut refs = vec![git_ref.to_owned(), branch.to_owned()];
        if let Some(sha) = self.resolve(git_ref) {
            refs.push(sha.clone());
            refs.extend(
                self.branches
                    .iter()
                    .filter(|(_, s)| s.eq_ignore_ascii_case(&sha))
                    .map(|(b, _)| b.clone()),
            );
        }
        refs.dedup();
        refs
    }
}

/// An installation token the sim issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// The installation it acts for.
    pub(crate) installation_id: u64,
    /// When it stops working.
    pub(crate) expires_at: chrono::DateTime<chrono::Utc>,
    /// Repository names (lower case) the token was narrowed to, if it was.
    pub(crate) repositories: Option<Vec<String>>,
}

/// Seeded random faults for chaos tests.
pub(crate) struct RandomFaults {
    /// The share of requests that get a fault.
    pub(crate) rate: f64,
    /// The faults to choose from.
    pub(crate) kinds: Vec<FaultKind>,
    /// The seeded generator, so a run can be repeated.
    pub(crate) rng: StdRng,
}

/// Everything the simulator knows.
pub(crate) struct World {
    /// How the app is registered.
    pub(crate) config: SimConfig,
    /// The sim's own URL (for the links in its answers).
    pub(crate) base_url: String,
    /// The app's public key, to verify JWTs.
    pub(crate) decoding_key: DecodingKey,
    /// Installations by id.
    pub(crate) installations: BTreeMap<u64, Installation>,
    /// lower-case full name → repo.
    pub(crate) repos: BTreeMap<String, Repo>,
    /// Installation tokens issued, by token.
    pub(crate) tokens: HashMap<String, IssuedToken>,
    /// The last id handed out.
    pub(crate) next_id: u64,
    /// Requests answered so far (for request ids).
    pub(crate) request_seq: u64,
    /// Every request answered, in order.
    pub(crate) calls: Vec<RecordedCall>,
    /// What the app did that GitHub would punish.
    pub(crate) violations: Vec<String>,
    /// Injected faults still to fire.
    pub(crate) faults: Vec<Fault>,
    /// Random faults, when switched on.
    pub(crate) random: Option<RandomFaults>,
    /// Each budget's rate-limit counters.
    pub(crate) limits: HashMap<RateKey, RateState>,
    /// Bench only: no rate limit is enforced (see [`crate::Simulator::lift_rate_limits`]).
    pub(crate) unlimited: bool,
    /// Where webhooks go.
    pub(crate) webhook_url: Option<String>,
    /// Every webhook delivery, oldest first.
    pub(crate) deliveries: Vec<DeliveryRecord>,
    /// Manifests posted to the new-app page, by the one-time code GitHub's redirect carries.
    pub(crate) pending_manifests: HashMap<String, PendingManifest>,
}

/// A manifest posted to the new-app page, waiting for `POST /app-manifests/{code}/conversions`.
pub(crate) struct PendingManifest {
    /// The manifest as posted (already checked for the keys GitHub requires).
    pub(crate) manifest: Value,
    /// The account the app is registered for: the organization of the page, or the signed-in user.
    pub(crate) owner: String,
    /// When it was posted: the whole flow must finish within an hour (GITHUB-FACTS §6).
    pub(crate) posted_at: chrono::DateTime<chrono::Utc>,
}

/// A delivery to record.
pub(crate) struct NewDelivery {
    /// `X-GitHub-Delivery`.
    pub(crate) guid: String,
    /// `X-GitHub-Event`.
    pub(crate) event: String,
    /// The payload, parsed (for the ids and `action` the deliveries API shows).
    pub(crate) payload: Value,
    /// The exact bytes sent.
    pub(crate) body: Vec<u8>,
    /// The app's HTTP status (0 when it could not be reached).
    pub(crate) status_code: u16,
    /// `OK`, or what went wrong.
    pub(crate) status: String,
    /// Whether it is a redelivery.
    pub(crate) redelivery: bool,
    /// Seconds the app took.
    pub(crate) duration: f64,
}

/// Whether a ref looks like a commit sha (7 to 40 hex digits).
pub(crate) fn looks_like_sha(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl World {
    /// An empty world.
    pub(crate) fn new(config: SimConfig, base_url: String, decoding_key: DecodingKey) -> World {
        World {
            config,
            base_url,
            decoding_key,
            installations: BTreeMap::new(),
            repos: BTreeMap::new(),
            tokens: HashMap::new(),
            next_id: 1000,
            request_seq: 0,
            calls: Vec::new(),
            violations: Vec::new(),
            faults: Vec::new(),
            random: None,
            limits: HashMap::new(),
            webhook_url: None,
            unlimited: false,
            deliveries: Vec::new(),
            pending_manifests: HashMap::new(),
        }
    }

    /// A fresh id, increasing across every kind of object.
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Records (and logs) something GitHub would punish.
    pub(crate) fn violation(&mut self, text: String) {
        tracing::warn!(violation = %text, "github simulator: violation");
        self.violations.push(text);
    }

    /// The app's bot login, `<slug>[bot]`.
    pub(crate) fn bot_login(&self) -> String {
        format!("{}[bot]", self.config.app_slug)
    }

    /// Installs the app on an account.
    pub(crate) fn add_installation(&mut self, installation_id: u64, account: &str) {
        self.installations.insert(
            installation_id,
            Installation {
                account: account.to_owned(),
            },
        );
    }

    /// Adds a repository with one branch at one commit.
    pub(crate) fn add_repo(
        &mut self,
        installation_id: u64,
        full_name: &str,
        default_branch: &str,
        sha: &str,
    ) {
        let id = self.new_id();
        let mut branches = BTreeMap::new();
        branches.insert(default_branch.to_owned(), sha.to_owned());
        let mut known_shas = HashSet::new();
        known_shas.insert(sha.to_ascii_lowercase());
        self.repos.insert(
            full_name.to_ascii_lowercase(),
            Repo {
                id,
                installation_id,
                full_name: full_name.to_owned(),
                default_branch: default_branch.to_owned(),
                branches,
                known_shas,
                files: HashMap::new(),
                pulls: BTreeMap::new(),
                roles: HashMap::new(),
                check_runs: Vec::new(),
                dispatches: Vec::new(),
                workflow_dispatches: Vec::new(),
                workflow_runs: Vec::new(),
                reactions: Vec::new(),
                comments: Vec::new(),
            },
        );
    }

    /// Switches seeded random faults on (or off, with a zero rate or no kinds).
    pub(crate) fn set_random_faults(&mut self, rate: f64, kinds: Vec<FaultKind>, seed: u64) {
        self.random = if rate > 0.0 && !kinds.is_empty() {
            Some(RandomFaults {
                rate,
                kinds,
                rng: StdRng::seed_from_u64(seed),
            })
        } else {
            None
        };
    }

    /// Records a webhook delivery; returns its id.
    pub(crate) fn record_delivery(&mut self, d: NewDelivery) -> u64 {
        let id = self.new_id();
        let installation_id = d
            .payload
            .pointer("/installation/id")
            .and_then(Value::as_u64);
        let repository_id = d.payload.pointer("/repository/id").and_then(Value::as_u64);
        let action = d
            .payload
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.deliveries.push(DeliveryRecord {
            id,
            guid: d.guid,
            event: d.event,
            action,
            status_code: d.status_code,
            status: d.status,
            installation_id,
            repository_id,
            redelivery: d.redelivery,
            delivered_at: chrono::Utc::now(),
            duration: d.duration,
            body: d.body,
        });
        id
    }
}
