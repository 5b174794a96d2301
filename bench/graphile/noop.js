// The peer of `boomerang bench jobs-db`: graphile-worker, in a schema of its own of the same database, runs no-op
// jobs (a JS function that returns at once) and prints one JSON line of figures for the Rust side. It is written to
// a temporary directory next to the pinned graphile-worker that `npm install` put there; boomerang drops the schema.
//
// Environment: PEER_DATABASE_URL (the database), PEER_SCHEMA (graphile-worker's schema, created by its migrations),
// PEER_JOBS (jobs at PEER_CONCURRENCY in flight), PEER_LONE (lone jobs, one after another), PEER_CONCURRENCY.
"use strict";
const { run, runMigrations, Logger } = require("graphile-worker");
const { Client } = require("pg");

const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
};
const url = env("PEER_DATABASE_URL");
const schema = env("PEER_SCHEMA");
const jobs = Number(env("PEER_JOBS"));
const lone = Number(env("PEER_LONE"));
const concurrency = Number(env("PEER_CONCURRENCY"));
// The workers' sessions carry the schema's name, so the script can wait for them to end (when their statistics are
// flushed) and tell them from its own.
const workerUrl = `${url}${url.includes("?") ? "&" : "?"}application_name=${schema}`;

// Warnings and errors only, on stderr: stdout carries the one JSON line.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker: ${message}`);
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Queries the script ran, each one transaction of its own: taken off the database's count. */
let ownQueries = 0;

/** One query on a connection of its own (the script's reads are not the workers'). */
async function query(sql, params) {
  ownQueries += 1;
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Waits until the workers' sessions have ended: a session's statistics reach pg_stat_* when it ends. */
async function sessionsGone() {
  for (let i = 0; i < 300; i++) {
    const rows = await query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [schema]);
    if (rows[0].n === 0) return;
    await sleep(50);
  }
  throw new Error("graphile-worker's sessions did not end within 15 s");
}

/** The database's committed transactions and the rows written in the schema's tables so far. */
async function counters() {
  await sleep(200);
  const mark = ownQueries;
  const [db] = await query("SELECT xact_commit::bigint AS x FROM pg_stat_database WHERE datname = current_database()");
  const [rows] = await query(
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint AS r FROM pg_stat_user_tables WHERE schemaname = $1",
    [schema],
  );
  return { xact: Number(db.x), rows: Number(rows.r), mark };
}

async function main() {
  await runMigrations({ connectionString: workerUrl, schema, logger });
  await sessionsGone();
  const before = await counters();
  let completed = 0;
  let failed = 0;
  const runner = await run({
    connectionString: workerUrl,
    schema,
    concurrency,
    noHandleSignals: true,
    logger,
    taskList: { noop: async () => {} },
  });
  runner.events.on("job:complete", ({ error }) => {
    completed += 1;
    if (error) failed += 1;
  });
  const waitFor = async (count) => {
    while (completed < count) await sleep(0.2);
  };
  const quit = await (async () => {
    // Lone jobs: added, run, and their row gone (the completion committed) before the next one is added.
    const loneMs = [];
    const poller = new Client({ connectionString: url });
    await poller.connect();
    for (let i = 0; i < lone; i++) {
      const started = process.hrtime.bigint();
      // Its completion may be seen before `addJob` answers.
      const done = completed + 1;
      const job = await runner.addJob("noop", { n: i });
      await waitFor(done);
      for (;;) {
        ownQueries += 1;
        const found = await poller.query(`SELECT 1 FROM ${schema}._private_jobs WHERE id = $1`, [job.id]);
        if (found.rows.length === 0) break;
      }
      loneMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    await poller.end();
    // Throughput: `concurrency` jobs in flight, from the first add to the last completion.
    const base = completed;
    const started = process.hrtime.bigint();
    let added = 0;
    const adding = [];
    while (completed - base < jobs) {
      while (added < jobs && added - (completed - base) < concurrency) {
        adding.push(runner.addJob("noop", { n: added }));
        added += 1;
      }
      await sleep(0.2);
    }
    await Promise.all(adding);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { loneMs, seconds };
  })();
  await runner.stop();
  await sessionsGone();
  const after = await counters();
  const total = lone + jobs;
  const version = require("graphile-worker/package.json").version;
  process.stdout.write(
    JSON.stringify({
      version,
      node: process.version,
      jobs: total,
      succeeded: completed - failed,
      jobs_per_s: jobs / quit.seconds,
      lone_ms: quit.loneMs,
      // The script's own queries from the first read of `before` up to the read of `after`'s count.
      xact_commit: after.xact - before.xact - (after.mark - before.mark),
      rows_written: after.rows - before.rows,
    }) + "\n",
  );
}

main().catch((e) => {
  console.error(`graphile-worker bench: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
