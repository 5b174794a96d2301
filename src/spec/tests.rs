//! Tests of the config language: valid documents to structs, invalid snippets to positioned
//! errors, parameter resolution, the step DAG, trigger matching, retry delays, and a proptest
//! that no input panics the parser.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// The example of the spec (and of docs/config.md), verbatim in spirit.
const FULL: &str = r#"
command_prefix: "/"
jobs:
  deploy:
    description: Deploy the service
    on:
      command: {permission: maintain, name: ship}
      workflow_dispatch: {workflows: [.github/workflows/release.yml]}
      workflow_run: {workflows: [CI], conclusions: [success]}
      repository_dispatch: {types: [publish]}
      push: {branches: [main, "release/*"]}
      check_suite: {branches: [main]}
      api: true
    params:
      env: {type: enum, values: [staging, production], default: staging, description: Target}
      version: {type: string, required: true}
      dry: {type: bool, default: false}
      replicas: {type: int, default: 2, min: 1, max: 10}
      token: {type: string, secret: true}
    timeout: 30m
    env: {RUST_LOG: info, LEVEL: 3, RATIO: 1.10, ON: true}
    checkout: true
    on_interrupt: retry
    concurrency: {group: "deploy-${{ params.env }}", cancel_in_progress: false}
    steps:
      - id: build
        name: Build
        run: cargo build --release
        timeout: 10m
        env: {A: b}
        compensate: ./rollback.sh
      - id: test
        run: cargo test
        needs: [build]
        when: success
        on_failure: compensate
        retry: {attempts: 3, backoff: {initial: 1s, max: 30s, factor: 2.0}, jitter: true, exit_codes: [75]}
      - run: echo done
    on_complete:
      dispatch:
        event_type: deployed
        payload: {service: api, level: 2, nested: {ok: true}}
"#;

fn ok(text: &str) -> RepoConfig {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got a config: {c:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn full_example_parses_into_the_expected_job() {
    let config = ok(FULL);
    assert_eq!(config.command_prefix, "/");
    assert_eq!(config.jobs.len(), 1);
    let job = &config.jobs[0];
    assert_eq!(job.name, "deploy");
    assert_eq!(job.description.as_deref(), Some("Deploy the service"));
    assert_eq!(
        job.triggers,
        Triggers {
            command: Some(CommandTrigger {
                permission: Permission::Maintain,
                name: Some("ship".into())
            }),
            api: true,
            workflow_dispatch: Some(WorkflowDispatchTrigger {
                workflows: vec![".github/workflows/release.yml".into()]
            }),
            workflow_run: Some(WorkflowRunTrigger {
                workflows: vec!["CI".into()],
                conclusions: vec!["success".into()]
            }),
            repository_dispatch: Some(RepositoryDispatchTrigger {
                types: vec!["publish".into()]
            }),
            push: Some(BranchTrigger {
                branches: vec!["main".into(), "release/*".into()]
            }),
            check_suite: Some(BranchTrigger {
                branches: vec!["main".into()]
            }),
        }
    );
    assert_eq!(
        job.params,
        vec![
            ParamSpec {
                name: "env".into(),
                description: Some("Target".into()),
                required: false,
                secret: false,
                kind: ParamKind::Enum {
                    values: vec!["staging".into(), "production".into()],
                    default: Some("staging".into())
                }
            },
            ParamSpec {
                name: "version".into(),
                description: None,
                required: true,
                secret: false,
                kind: ParamKind::String { default: None }
            },
            ParamSpec {
                name: "dry".into(),
                description: None,
                required: false,
                secret: false,
                kind: ParamKind::Bool {
                    default: Some(false)
                }
            },
            ParamSpec {
                name: "replicas".into(),
                description: None,
                required: false,
                secret: false,
                kind: ParamKind::Int {
                    default: Some(2),
                    min: Some(1),
                    max: Some(10)
                }
            },
            ParamSpec {
                name: "token".into(),
                description: None,
                required: false,
                secret: true,
                kind: ParamKind::String { default: None }
            },
        ]
    );
    assert_eq!(job.timeout, Duration::from_secs(30 * 60));
    let env: BTreeMap<String, String> = [
        ("RUST_LOG", "info"),
        ("LEVEL", "3"),
        ("RATIO", "1.10"),
        ("ON", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(job.env, env, "scalars keep their spelling");
    assert!(job.checkout);
    assert_eq!(job.on_interrupt, OnInterrupt::Retry);
    assert_eq!(
        job.concurrency,
        Some(Concurrency {
            group: "deploy-${{ params.env }}".into(),
            cancel_in_progress: false
        })
    );
    assert_eq!(
        job.steps[0],
        StepSpec {
            id: "build".into(),
            name: "Build".into(),
            run: "cargo build --release".into(),
            needs: vec![],
            timeout: Some(Duration::from_secs(600)),
            env: [("A".to_owned(), "b".to_owned())].into_iter().collect(),
            when: When::Success,
            on_failure: OnFailure::Stop,
            retry: None,
            compensate: Some("./rollback.sh".into()),
            wait: None,
            dispatch: None,
        }
    );
    assert_eq!(
        job.steps[1].retry,
        Some(RetryPolicy {
            attempts: 3,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: true,
            exit_codes: vec![75],
        })
    );
    assert_eq!(job.steps[1].on_failure, OnFailure::Compensate);
    assert_eq!(job.steps[2].id, "step-3");
    assert_eq!(job.steps[2].name, "step-3");
    assert_eq!(job.steps[2].needs, vec!["test".to_owned()]);
    let dispatch = job.dispatch.as_ref().expect("dispatch is enabled");
    assert_eq!(dispatch.event_type, "deployed");
    assert_eq!(
        serde_json::Value::Object(dispatch.payload.clone()),
        serde_json::json!({"service": "api", "level": 2, "nested": {"ok": true}})
    );
}

#[test]
fn minimal_job_gets_every_default() {
    let config = ok("jobs:\n  build:\n    steps:\n      - run: make\n");
    assert_eq!(
        config,
        RepoConfig {
            command_prefix: "/".into(),
            jobs: vec![JobSpec {
                name: "build".into(),
                description: None,
                triggers: Triggers {
                    command: Some(CommandTrigger {
                        permission: Permission::Write,
                        name: None
                    }),
                    api: true,
                    ..Triggers::default()
                },
                params: vec![],
                timeout: Duration::from_secs(3600),
                env: BTreeMap::new(),
                checkout: false,
                on_interrupt: OnInterrupt::Fail,
                concurrency: None,
                steps: vec![StepSpec {
                    id: "step-1".into(),
                    name: "step-1".into(),
                    run: "make".into(),
                    needs: vec![],
                    timeout: None,
                    env: BTreeMap::new(),
                    when: When::Success,
                    on_failure: OnFailure::Stop,
                    retry: None,
                    compensate: None,
                    wait: None,
                    dispatch: None,
                }],
                dispatch: Some(DispatchSpec {
                    event_type: "boomerang-completed".into(),
                    payload: serde_json::Map::new(),
                }),
                problem_matchers: vec![],
            }],
        }
    );
}

#[test]
fn valid_variants_table() {
    type Check = fn(&RepoConfig);
    let cases: &[(&str, &str, Check)] = &[
        ("empty jobs", "jobs: {}\n", |c| assert!(c.jobs.is_empty())),
        ("custom prefix", "command_prefix: '!'\njobs: {}\n", |c| {
            assert_eq!(c.command_prefix, "!")
        }),
        (
            "command: true, push: true",
            "jobs:\n  a:\n    on: {command: true, push: true}\n    steps: [{run: x}]\n",
            |c| {
                let t = &c.jobs[0].triggers;
                assert_eq!(
                    t.command.as_ref().map(|c| c.permission),
                    Some(Permission::Write)
                );
                assert!(!t.api);
                assert_eq!(t.push, Some(BranchTrigger { branches: vec![] }));
            },
        ),
        (
            "dispatch disabled",
            "jobs:\n  a:\n    steps: [{run: x}]\n    on_complete: {dispatch: false}\n",
            |c| assert_eq!(c.jobs[0].dispatch, None),
        ),
        (
            "retry shorthand and integer durations",
            "jobs:\n  a:\n    timeout: 90\n    steps:\n      - run: x\n        retry: 4\n        timeout: 1h 30m\n",
            |c| {
                let j = &c.jobs[0];
                assert_eq!(j.timeout, Duration::from_secs(90));
                assert_eq!(j.steps[0].timeout, Some(Duration::from_secs(5400)));
                assert_eq!(j.steps[0].retry, Some(RetryPolicy::with_attempts(4)));
            },
        ),
        (
            "concurrency shorthand with job",
            "jobs:\n  a:\n    concurrency: 'lock-${{job}}'\n    steps: [{run: x}]\n",
            |c| {
                let j = &c.jobs[0];
                assert_eq!(
                    j.concurrency_group(&ResolvedParams::default()).as_deref(),
                    Some("lock-a")
                );
            },
        ),
        (
            "workflow_run conclusions default to success",
            "jobs:\n  a:\n    on: {workflow_run: {workflows: [CI]}}\n    steps: [{run: x}]\n",
            |c| {
                let w = c.jobs[0].triggers.workflow_run.as_ref();
                assert_eq!(
                    w.map(|w| w.conclusions.clone()),
                    Some(vec!["success".into()])
                );
            },
        ),
        (
            "block scalar run and numeric step id",
            "jobs:\n  a:\n    steps:\n      - id: 1\n        run: |\n          echo a\n          echo b\n",
            |c| {
                assert_eq!(c.jobs[0].steps[0].id, "1");
                assert_eq!(c.jobs[0].steps[0].run, "echo a\necho b\n");
            },
        ),
    ];
    for (name, text, check) in cases {
        let config = match parse(text) {
            Ok(c) => c,
            Err(e) => panic!("{name}: expected valid, got:\n{e}"),
        };
        check(&config);
    }
}

#[test]
fn invalid_snippets_report_line_column_and_message() {
    // (name, text, line, column, message substring)
    let cases: &[(&str, &str, usize, usize, &str)] = &[
        (
            "typo in job key",
            "jobs:\n  build:\n    stpes: []\n    steps: [{run: x}]\n",
            3,
            5,
            "unknown key `stpes` in job `build`; did you mean `steps`?",
        ),
        (
            "unknown top key",
            "job: {}\njobs: {}\n",
            1,
            1,
            "unknown key `job` at the top level; did you mean `jobs`?",
        ),
        (
            "missing jobs",
            "command_prefix: /\n",
            1,
            1,
            "missing key `jobs`",
        ),
        ("empty file", "", 1, 1, "the file is empty"),
        ("comment only", "# nothing\n", 1, 1, "the file is empty"),
        (
            "bad job name",
            "jobs:\n  Build:\n    steps: [{run: x}]\n",
            2,
            3,
            "invalid job name `Build`",
        ),
        (
            "missing steps",
            "jobs:\n  a:\n    description: x\n",
            3,
            5,
            "missing key `steps` in job `a`",
        ),
        (
            "missing run",
            "jobs:\n  a:\n    steps:\n      - id: x\n",
            4,
            9,
            "missing key `run` in step `x` of job `a`",
        ),
        (
            "enum default not in values",
            "jobs:\n  a:\n    params:\n      env: {type: enum, values: [staging, production], default: prod}\n    steps: [{run: x}]\n",
            4,
            65,
            "`default` `prod` of parameter `env` of job `a` is not one of its `values` (staging, production)",
        ),
        (
            "int default out of range",
            "jobs:\n  a:\n    params:\n      n: {type: int, default: 20, min: 1, max: 10}\n    steps: [{run: x}]\n",
            4,
            31,
            "`default` 20 of parameter `n` of job `a` is outside `min`..`max` (1..10)",
        ),
        (
            "required with default",
            "jobs:\n  a:\n    params:\n      v: {type: string, required: true, default: x}\n    steps: [{run: x}]\n",
            4,
            50,
            "is `required` and has a `default`",
        ),
        (
            "unknown param type",
            "jobs:\n  a:\n    params:\n      v: {type: str}\n    steps: [{run: x}]\n",
            4,
            17,
            "not `str`",
        ),
        (
            "duplicate step ids",
            "jobs:\n  a:\n    steps:\n      - {id: s, run: x}\n      - {id: s, run: y}\n",
            5,
            14,
            "duplicate step id `s`",
        ),
        (
            "needs unknown step",
            "jobs:\n  a:\n    steps:\n      - {id: build, run: x}\n      - {run: y, needs: [biuld]}\n",
            5,
            26,
            "unknown step `biuld`; did you mean `build`?",
        ),
        (
            "needs itself",
            "jobs:\n  a:\n    steps:\n      - {id: s, run: x, needs: [s]}\n",
            4,
            33,
            "needs itself",
        ),
        (
            "cycle",
            "jobs:\n  a:\n    steps:\n      - {id: a, run: x, needs: [c]}\n      - {id: b, run: x}\n      - {id: c, run: x, needs: [b]}\n",
            4,
            32,
            "steps form a cycle: a → c → b → a",
        ),
        (
            "concurrency undeclared param",
            "jobs:\n  a:\n    concurrency: {group: 'x-${{ params.nope }}'}\n    steps: [{run: x}]\n",
            3,
            26,
            "undeclared parameter `nope`",
        ),
        (
            "concurrency bad expression",
            "jobs:\n  a:\n    concurrency: 'x-${{ github.ref }}'\n    steps: [{run: x}]\n",
            3,
            18,
            "unknown expression `github.ref`",
        ),
        (
            "event_type too long",
            &format!(
                "jobs:\n  a:\n    steps: [{{run: x}}]\n    on_complete: {{dispatch: {{event_type: {}}}}}\n",
                "e".repeat(101)
            ),
            4,
            42,
            "1 to 100 characters",
        ),
        (
            "payload collides with a param",
            "jobs:\n  a:\n    params: {env: {type: string}}\n    steps: [{run: x}]\n    on_complete: {dispatch: {payload: {env: x}}}\n",
            5,
            40,
            "collides with the parameter",
        ),
        (
            "bad conclusion",
            "jobs:\n  a:\n    on: {workflow_run: {workflows: [CI], conclusions: [sucess]}}\n    steps: [{run: x}]\n",
            3,
            56,
            "unknown conclusion `sucess`",
        ),
        (
            "retry attempts out of range",
            "jobs:\n  a:\n    steps:\n      - {run: x, retry: {attempts: 21}}\n",
            4,
            36,
            "between 1 and 20",
        ),
        (
            "retry factor below 1",
            "jobs:\n  a:\n    steps:\n      - {run: x, retry: {attempts: 2, backoff: {factor: 0.5}}}\n",
            4,
            57,
            "at least 1",
        ),
        (
            "bad permission",
            "jobs:\n  a:\n    on: {command: {permission: read}}\n    steps: [{run: x}]\n",
            3,
            32,
            "must be one of write, maintain, admin",
        ),
        (
            "zero timeout",
            "jobs:\n  a:\n    timeout: 0s\n    steps: [{run: x}]\n",
            3,
            14,
            "greater than zero",
        ),
        (
            "timeout over 7 days",
            "jobs:\n  a:\n    timeout: 8 days\n    steps: [{run: x}]\n",
            3,
            14,
            "at most 7 days",
        ),
        (
            "unparsable duration",
            "jobs:\n  a:\n    timeout: soon\n    steps: [{run: x}]\n",
            3,
            14,
            "is not a duration",
        ),
        (
            "yaml syntax error",
            "jobs:\n  a: [1, 2\n",
            3,
            1,
            "YAML syntax error",
        ),
        (
            "duplicate yaml key",
            "jobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: [{run: y}]\n",
            4,
            3,
            "duplicate key",
        ),
        (
            "steps not a list",
            "jobs:\n  a:\n    steps: {run: x}\n",
            3,
            12,
            "must be a list, not a mapping",
        ),
        (
            "env value is a list",
            "jobs:\n  a:\n    env: {A: [1]}\n    steps: [{run: x}]\n",
            3,
            14,
            "must be a string, not a list",
        ),
        (
            "compensate without any compensate command",
            "jobs:\n  a:\n    steps:\n      - {run: x, on_failure: compensate}\n",
            4,
            30,
            "no step defines `compensate`",
        ),
        (
            "command alias taken by another job",
            "jobs:\n  a:\n    steps: [{run: x}]\n  b:\n    on: {command: {name: a}}\n    steps: [{run: x}]\n",
            5,
            26,
            "already the name of job `a`",
        ),
        (
            "two documents",
            "jobs: {}\n---\njobs: {}\n",
            3,
            1,
            "only one YAML document",
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, line, column, needle) in cases {
        let errs = match parse(text) {
            Ok(_) => {
                failures.push(format!("{name}: expected an error, got a config"));
                continue;
            }
            Err(e) => e.0,
        };
        if !errs
            .iter()
            .any(|e| e.line == *line && e.column == *column && e.message.contains(needle))
        {
            failures.push(format!(
                "{name}: expected line {line}, column {column}, containing {needle:?}; got:\n{}",
                ConfigErrors(errs.clone())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_is_collected_and_sorted() {
    let text = "jobs:\n  a:\n    timeout: nope\n    stpes: []\n    steps:\n      - {run: x, when: sometimes}\n  B:\n    steps: [{run: y}]\n";
    let errs = errors(text);
    let positions: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        positions,
        vec![(3, 14), (4, 5), (6, 24), (7, 3)],
        "{errs:?}"
    );
    let shown = ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 4);
    assert!(shown.starts_with("line 3, column 14: "), "{shown}");
}

#[test]
fn oversized_input_is_an_error() {
    let text = format!("jobs: {{}}\n#{}\n", "x".repeat(MAX_CONFIG_BYTES));
    let errs = errors(&text);
    assert_eq!((errs[0].line, errs[0].column), (1, 1));
    assert!(errs[0].message.contains("1 MiB"));
}

#[test]
fn deep_nesting_is_refused_without_overflowing() {
    let text = format!("jobs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let errs = errors(&text);
    assert!(
        errs[0].message.contains("nested more than") || errs[0].message.contains("recursion limit"),
        "{errs:?}"
    );
    let text = format!("jobs:\n  a:\n    steps: {}\n", "- ".repeat(100_000));
    assert!(parse(&text).is_err());
}

fn job_with_params() -> JobSpec {
    let config = ok(FULL);
    config.jobs[0].clone()
}

fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn params_resolution_table() {
    let job = job_with_params();
    // (given, Ok(expected pairs) | Err(message))
    type Expected = Result<Vec<(&'static str, ParamValue)>, &'static str>;
    let cases: Vec<(Vec<(&str, &str)>, Expected)> = vec![
        (
            vec![("version", "1.2")],
            Ok(vec![
                ("dry", ParamValue::Bool(false)),
                ("env", ParamValue::String("staging".into())),
                ("replicas", ParamValue::Int(2)),
                ("version", ParamValue::String("1.2".into())),
            ]),
        ),
        (
            vec![
                ("version", "2"),
                ("env", "production"),
                ("dry", "yes"),
                ("replicas", "10"),
                ("token", "s3"),
            ],
            Ok(vec![
                ("dry", ParamValue::Bool(true)),
                ("env", ParamValue::String("production".into())),
                ("replicas", ParamValue::Int(10)),
                ("token", ParamValue::String("s3".into())),
                ("version", ParamValue::String("2".into())),
            ]),
        ),
        (vec![], Err("missing required parameter `version`")),
        (
            vec![("version", "1"), ("env", "prod")],
            Err("parameter `env` must be one of staging, production, not `prod`"),
        ),
        (
            vec![("version", "1"), ("envv", "x")],
            Err("unknown parameter `envv`; did you mean `env`?"),
        ),
        (
            vec![("version", "1"), ("replicas", "11")],
            Err("parameter `replicas` must be between 1 and 10, not 11"),
        ),
        (
            vec![("version", "1"), ("replicas", "many")],
            Err("parameter `replicas` must be an integer, not `many`"),
        ),
        (
            vec![("version", "1"), ("dry", "maybe")],
            Err("parameter `dry` must be true or false, not `maybe`"),
        ),
        (
            vec![("version", "1"), ("version", "2")],
            Err("parameter `version` is given more than once"),
        ),
        (
            vec![("dry", "x")],
            Err(
                "parameter `dry` must be true or false, not `x`; missing required parameter `version`",
            ),
        ),
    ];
    for (input, expected) in cases {
        let got = job.resolve_params(&given(&input));
        match (got, expected) {
            (Ok(r), Ok(pairs)) => {
                let values: Vec<(String, ParamValue)> =
                    r.0.iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect();
                let want: Vec<(String, ParamValue)> =
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                assert_eq!(values, want, "{input:?}");
            }
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{input:?}"),
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn resolved_params_know_secrets_env_and_concurrency_group() {
    let job = job_with_params();
    let r = job
        .resolve_params(&given(&[
            ("version", "1.0"),
            ("token", "hunter2"),
            ("env", "production"),
        ]))
        .expect("valid params");
    assert!(r.is_secret("token"));
    assert!(!r.is_secret("version"));
    assert_eq!(r.secret_values(), vec!["hunter2".to_owned()]);
    assert!(!r.public_json().contains_key("token"));
    let env = r.env_vars();
    assert!(env.contains(&("BOOMERANG_PARAM_TOKEN".into(), "hunter2".into())));
    assert!(env.contains(&("BOOMERANG_PARAM_REPLICAS".into(), "2".into())));
    assert_eq!(
        job.concurrency_group(&r).as_deref(),
        Some("deploy-production")
    );
    assert_eq!(job.min_permission(), Permission::Maintain);
    let json = serde_json::to_string(&r).expect("serialises");
    let back: ResolvedParams = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, r);
}

#[test]
fn hyphenated_param_names_become_underscored_env_vars() {
    let config = ok(
        "jobs:\n  a:\n    params: {dry-run: {type: bool, default: true}}\n    steps: [{run: x}]\n",
    );
    let r = config.jobs[0].resolve_params(&[]).expect("defaults apply");
    assert_eq!(
        r.env_vars(),
        vec![("BOOMERANG_PARAM_DRY_RUN".to_owned(), "true".to_owned())]
    );
    let errs = errors(
        "jobs:\n  a:\n    params: {a-b: {type: bool}, a_b: {type: bool}}\n    steps: [{run: x}]\n",
    );
    assert!(errs[0].message.contains("BOOMERANG_PARAM_A_B"), "{errs:?}");
}

fn needs_of(text: &str) -> Vec<(String, Vec<String>)> {
    ok(text).jobs[0]
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.needs.clone()))
        .collect()
}

#[test]
fn needs_are_resolved_into_a_dag() {
    let text = "jobs:\n  a:\n    steps:\n      - {id: a, run: x}\n      - {id: b, run: x}\n      - {id: c, run: x, needs: [a]}\n      - {id: d, run: x, needs: [b, c]}\n      - {id: e, run: x, needs: []}\n      - {id: f, run: x}\n";
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        needs_of(text),
        vec![
            ("a".into(), owned(&[])),
            ("b".into(), owned(&["a"])),
            ("c".into(), owned(&["a"])),
            ("d".into(), owned(&["b", "c"])),
            ("e".into(), owned(&[])),
            ("f".into(), owned(&["e"])),
        ]
    );
}

#[test]
fn cycles_are_named_once_each() {
    use super::validate::{DagStep, resolve_needs};
    let steps = [
        DagStep {
            id: "a",
            needs: Some(vec!["b"]),
        },
        DagStep {
            id: "b",
            needs: Some(vec!["a"]),
        },
        DagStep {
            id: "c",
            needs: Some(vec!["d"]),
        },
        DagStep {
            id: "d",
            needs: None,
        }, // implicitly needs c
        DagStep {
            id: "e",
            needs: Some(vec![]),
        },
    ];
    let (_, errs) = resolve_needs(&steps);
    let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "steps form a cycle: a → b → a",
            "steps form a cycle: c → d → c"
        ]
    );
    // A long chain closing on itself does not blow the stack.
    let ids: Vec<String> = (0..20_000).map(|i| format!("s{i}")).collect();
    let mut long: Vec<DagStep<'_>> = ids.iter().map(|id| DagStep { id, needs: None }).collect();
    long[0].needs = Some(vec![ids[ids.len() - 1].as_str()]);
    let (_, errs) = resolve_needs(&long);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .message
            .starts_with("steps form a cycle of 20000 steps: s0 → s19999 → "),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.ends_with("s1 → s0"), "{}", errs[0].message);
    assert!(errs[0].message.len() < 300);
}

#[test]
fn branch_globs_table() {
    use super::validate::glob_match;
    let cases = [
        ("main", "main", true),
        ("main", "mainline", false),
        ("release/*", "release/1.0", true),
        ("release/*", "release/1.0/hotfix", false),
        ("release/**", "release/1.0/hotfix", true),
        ("**", "any/thing", true),
        ("*", "feature/x", false),
        ("v?.?", "v1.2", true),
        ("v?.?", "v1/2", false),
        ("*-stable", "2024-stable", true),
        ("a*b*c*d*e*f*g", &"a".repeat(2000), false),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(glob_match(pattern, text), want, "{pattern} vs {text}");
    }
    let filter = BranchTrigger {
        branches: vec!["release/**".into(), "!release/old/**".into(), "main".into()],
    };
    assert!(filter.matches("main"));
    assert!(filter.matches("release/2.0"));
    assert!(!filter.matches("release/old/1.0"));
    assert!(!filter.matches("dev"));
}

#[test]
fn trigger_lookups() {
    let text = r#"
jobs:
  deploy:
    on:
      command: {name: ship}
      push: {branches: ["release/*"]}
      workflow_dispatch: {workflows: [.github/workflows/release.yml]}
      workflow_run: {workflows: [CI], conclusions: [success, neutral]}
      repository_dispatch: {types: [publish]}
    steps: [{run: x}]
  lint:
    steps: [{run: x}]
  nightly:
    on: {check_suite: true, api: true}
    steps: [{run: x}]
"#;
    let c = ok(text);
    let names = |v: Vec<&JobSpec>| v.into_iter().map(|j| j.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        c.jobs_for_command("ship").map(|j| j.name.as_str()),
        Some("deploy")
    );
    assert_eq!(
        c.jobs_for_command("deploy").map(|j| j.name.as_str()),
        Some("deploy")
    );
    assert_eq!(
        c.jobs_for_command("lint").map(|j| j.name.as_str()),
        Some("lint")
    );
    assert!(
        c.jobs_for_command("nightly").is_none(),
        "no command trigger"
    );
    assert_eq!(c.suggest_job("lnt"), Some("lint"));
    assert_eq!(c.suggest_job("zzzzzz"), None);
    assert_eq!(names(c.jobs_for_push("release/1")), vec!["deploy"]);
    assert_eq!(
        names(c.jobs_for_push("refs/heads/release/1")),
        vec!["deploy"]
    );
    assert!(c.jobs_for_push("main").is_empty());
    assert_eq!(names(c.jobs_for_check_suite("anything")), vec!["nightly"]);
    assert_eq!(
        names(c.jobs_for_workflow_dispatch(".github/workflows/release.yml")),
        vec!["deploy"]
    );
    assert!(
        c.jobs_for_workflow_dispatch(".github/workflows/ci.yml")
            .is_empty()
    );
    assert_eq!(
        names(c.jobs_for_workflow_run("CI", "neutral")),
        vec!["deploy"]
    );
    assert!(c.jobs_for_workflow_run("CI", "failure").is_empty());
    assert_eq!(
        names(c.jobs_for_repository_dispatch("publish")),
        vec!["deploy"]
    );
    assert!(c.jobs_for_repository_dispatch("other").is_empty());
}

#[test]
fn retry_delay_math() {
    let p = RetryPolicy {
        attempts: 5,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(30),
        factor: 2.0,
        jitter: false,
        exit_codes: vec![],
    };
    // (retry number, sample, expected millis)
    let cases = [
        (1, 0.0, 1000),
        (2, 0.0, 2000),
        (3, 0.9, 4000),
        (5, 0.0, 16_000),
        (6, 0.0, 30_000),
        (1000, 0.0, 30_000),
    ];
    for (n, sample, ms) in cases {
        assert_eq!(
            p.delay_before(n, sample),
            Duration::from_millis(ms),
            "retry {n}"
        );
    }
    let j = RetryPolicy {
        jitter: true,
        ..p.clone()
    };
    let cases = [
        (3, 0.0, 2000),
        (3, 1.0, 4000),
        (3, 0.5, 3000),
        (3, 7.0, 4000),
        (3, f64::NAN, 2000),
        (9, 1.0, 30_000),
    ];
    for (n, sample, ms) in cases {
        assert_eq!(
            j.delay_before(n, sample),
            Duration::from_millis(ms),
            "retry {n} sample {sample}"
        );
    }
    assert!(p.retries_on(1) && p.retries_on(124));
    assert!(!p.retries_on(0) && !p.retries_on(42) && !p.retries_on(130));
    let only = RetryPolicy {
        exit_codes: vec![75],
        ..p
    };
    assert!(only.retries_on(75) && !only.retries_on(1));
}

#[test]
fn permission_from_github_table() {
    let cases = [
        ("admin", Some("admin"), Some(Permission::Admin)),
        ("write", Some("maintain"), Some(Permission::Maintain)),
        ("write", Some("write"), Some(Permission::Write)),
        ("write", Some("custom-deployer"), Some(Permission::Write)),
        ("read", Some("triage"), Some(Permission::Read)),
        ("write", None, Some(Permission::Write)),
        ("none", None, None),
        ("none", Some("custom"), None),
    ];
    for (perm, role, want) in cases {
        assert_eq!(Permission::from_github(perm, role), want, "{perm} {role:?}");
    }
    assert!(Permission::Read < Permission::Write);
    assert!(Permission::Maintain < Permission::Admin);
}

#[test]
fn config_round_trips_through_json() {
    let config = ok(FULL);
    let json = serde_json::to_string(&config).expect("serialises");
    let back: RepoConfig = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, config);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["jobs"][0]["timeout"], serde_json::json!(1800));
}

#[test]
fn help_and_summary_mention_jobs_params_and_permissions() {
    let config = ok(FULL);
    let help = config.help_markdown();
    for needle in [
        "### `deploy`",
        "Deploy the service",
        "**maintain**",
        "`/run ship`",
        "| `env` | one of staging, production | `staging` | no | Target |",
        "| `version` | string |  | yes |  |",
        "| `replicas` | int 1..10 | `2` | no |  |",
        "(secret)",
        "Example: `/run ship version=<version>`",
        "push to `main`, `release/*`",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
    }
    let summary = config.summary_markdown();
    assert!(summary.contains("1 job."), "{summary}");
    assert!(summary.contains("| `deploy` |"), "{summary}");
    let empty = ok("jobs: {}\n");
    assert!(empty.help_markdown().contains("defines no jobs"));
}

#[test]
fn check_file_reports_path_line_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "jobs:\n  a:\n    stpes: []\n    steps: [{run: x}]\n").expect("write");
    let (report, ok_) = check_file(&bad);
    assert!(!ok_);
    assert_eq!(
        report,
        format!(
            "{}:3:5: unknown key `stpes` in job `a`; did you mean `steps`?\n",
            bad.display()
        )
    );
    let syntax = dir.path().join("syntax.yml");
    std::fs::write(&syntax, "jobs: [\n").expect("write");
    let (report, ok_) = check_file(&syntax);
    assert!(!ok_);
    assert!(
        report.starts_with(&format!("{}:2:1: YAML syntax error", syntax.display())),
        "{report}"
    );
    let good = dir.path().join("good.yml");
    std::fs::write(&good, FULL).expect("write");
    let (report, ok_) = check_file(&good);
    assert!(ok_, "{report}");
    assert!(
        report.contains("OK, 1 job") && report.contains("deploy (3 steps;"),
        "{report}"
    );
    let (report, ok_) = check_file(&dir.path().join("missing.yml"));
    assert!(!ok_ && report.contains("cannot read"), "{report}");
}

/// Small edits of a valid document: delete, insert or replace a character.
fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, kind, c) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match kind % 3 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars.insert(at, c),
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = parse(&text);
    }

    /// YAML-ish noise never panics the parser.
    #[test]
    fn yaml_alphabet_never_panics(text in "[a-z:{}\\[\\],\\-\n \"'&*!|>#$.0-9]{0,300}") {
        let _ = parse(&text);
    }

    /// Mutations of the full example never panic, and any error has a valid position.
    #[test]
    fn mutated_documents_never_panic(
        edits in proptest::collection::vec(
            (any::<usize>(), any::<u8>(), proptest::sample::select(vec![
                ' ', '\n', ':', '-', '[', ']', '{', '}', '"', '\'', '&', '*', '!', '|', 'a', '0', '$', '#', '\t',
            ])),
            1..6,
        )
    ) {
        let text = mutate(FULL, &edits);
        if let Err(errs) = parse(&text) {
            prop_assert!(!errs.0.is_empty());
            for e in errs.0 {
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }
}

/// A file near the size limit with thousands of broken `needs` reports each of them.
#[test]
fn large_documents_report_every_error() {
    let mut text = String::from("jobs:\n  a:\n    steps:\n");
    let mut steps = 0;
    while text.len() < 900_000 {
        let n = text.len();
        text.push_str(&format!(
            "      - {{id: s{n}, run: x, needs: [q{n}, r{n}]}}\n"
        ));
        steps += 1;
    }
    let errs = errors(&text);
    assert_eq!(errs.len(), 2 * steps);
    assert!(
        errs.windows(2)
            .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column))
    );
}

/// Alias expansion ("billion laughs") is bounded.
#[test]
fn alias_bombs_are_refused() {
    let text = format!(
        "a: &a [{}]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\njobs: {{}}\n",
        "1,".repeat(100)
    );
    let errs = errors(&text);
    assert!(errs[0].message.contains("alias expansion"), "{errs:?}");
}

/// One large anchored scalar referenced by thousands of aliases (a valid file under 1 MiB that expands to
/// gigabytes) is refused at the alias that crosses the expanded-size bound, before it is expanded.
#[test]
fn alias_expansion_is_bounded_in_bytes() {
    let mut text = format!(
        "jobs:\n  build:\n    description: &b \"{}\"\n    env:\n",
        "x".repeat(900_000)
    );
    for i in 0..3000 {
        text.push_str(&format!("      E{i}: *b\n"));
    }
    text.push_str("    steps:\n      - id: s\n        run: echo hi\n");
    assert!(text.len() < MAX_CONFIG_BYTES);
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    // The ninth alias (line 13) is the first to push the expansion past 8 MiB.
    assert_eq!((errs[0].line, errs[0].column), (13, 11), "{errs:?}");
    assert!(errs[0].message.contains("8 MiB"), "{errs:?}");
}

/// Aliases used as mapping keys are counted with all they hold (saphyr's own node budget counts such a key as one
/// node), so nested fan-out through keys is refused too.
#[test]
fn aliased_keys_count_towards_the_alias_budget() {
    // saphyr counts `*b` as 101 nodes; it clones about 5,100.
    let mut text = format!("a: &a [{}]\nb: &b {{", "1,".repeat(99));
    for i in 0..50 {
        text.push_str(&format!("? [*a, {i}] : 1, "));
    }
    text.push_str("}\nc: {");
    for i in 0..40 {
        text.push_str(&format!("? [*b, {i}] : 1, "));
    }
    text.push_str("}\njobs: {}\n");
    let errs = errors(&text);
    assert!(errs[0].message.contains("alias expansion"), "{errs:?}");
}

/// The example in docs/config.md is valid and means what the page says.
#[test]
fn documented_example_is_valid() {
    let page = include_str!("../../docs/config.md");
    let start = page.find("```yaml\n").map(|i| i + "```yaml\n".len());
    let block = start.and_then(|s| page[s..].find("```").map(|e| &page[s..s + e]));
    let config = ok(block.expect("docs/config.md has a yaml block"));
    let job = config.job("deploy").expect("deploy job");
    assert_eq!(job.params.len(), 5);
    assert_eq!(job.steps[1].needs, vec!["build".to_owned()]);
    assert_eq!(
        config.jobs_for_command("deploy").map(|j| j.name.as_str()),
        Some("deploy")
    );
    let r = job
        .resolve_params(&given(&[("version", "1.4.2"), ("env", "production")]))
        .expect("the documented command is valid");
    assert_eq!(
        job.concurrency_group(&r).as_deref(),
        Some("deploy-production")
    );
}

/// `problem_matchers` parses into the job, and bad regexes, unknown groups and severities are reported at their
/// line and column.
#[test]
fn problem_matchers_are_parsed_and_validated() {
    let config = ok(concat!(
        "jobs:\n  build:\n    steps: [{run: make}]\n    problem_matchers:\n",
        "      - regex: '^(?P<file>[^:]+):(?P<line>\\d+):(?P<col>\\d+): (?P<severity>error|warning): (?P<message>.*)$'\n",
        "      - {regex: 'FAILED (?P<message>.*)', severity: warning}\n",
    ));
    let m = &config.jobs[0].problem_matchers;
    assert_eq!(m.len(), 2);
    assert!(m[0].regex.starts_with("^(?P<file>"));
    assert_eq!(m[1].severity.as_deref(), Some("warning"));

    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "jobs:\n  b:\n    steps: [{run: x}]\n    problem_matchers:\n      - regex: '(unclosed'\n",
            5,
            16,
            "`regex` of problem matcher 1 of job `b` is not a valid regex",
        ),
        (
            "jobs:\n  b:\n    steps: [{run: x}]\n    problem_matchers:\n      - regex: '(?P<fiel>x)'\n",
            5,
            16,
            "unknown group `fiel` in `regex` of problem matcher 1 of job `b`; did you mean `file`?",
        ),
        (
            "jobs:\n  b:\n    steps: [{run: x}]\n    problem_matchers:\n      - {regex: x, severity: fatalish}\n",
            5,
            30,
            "`severity` of problem matcher 1 of job `b` must be `error`, `warning` or `notice`",
        ),
        (
            "jobs:\n  b:\n    steps: [{run: x}]\n    problem_matchers:\n      - {regx: x}\n",
            5,
            10,
            "unknown key `regx` in problem matcher 1 of job `b`; did you mean `regex`?",
        ),
        (
            "jobs:\n  b:\n    steps: [{run: x}]\n    problem_matchers: x\n",
            4,
            23,
            "`problem_matchers` of job `b` must be a list",
        ),
    ];
    for (text, line, column, message) in cases {
        let errs = errors(text);
        let e = errs
            .iter()
            .find(|e| e.message.contains(message))
            .unwrap_or_else(|| panic!("no error containing {message:?} in {errs:?}"));
        assert_eq!((e.line, e.column), (*line, *column), "{message}");
    }
}
