-- Steps placed on the fleet (STEP_PLACEMENT=fleet): the worker posts each try of a step as an order; any replica's
-- step agent claims one with FOR UPDATE SKIP LOCKED, runs it on its host and reports how it ended.
-- `state`: queued (posted, not claimed) → running (claimed by `agent`) → finished (`report` holds the outcome), or
-- lost (its agent stopped renewing its lease before reporting). `cancel`: the worker asks the agent to stop it.
CREATE TABLE boomerang_step_orders (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    attempt integer NOT NULL,
    step_order jsonb NOT NULL,
    state text NOT NULL DEFAULT 'queued',
    agent text,
    pgid bigint,
    started_at timestamptz,
    report jsonb,
    cancel boolean NOT NULL DEFAULT false,
    posted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX boomerang_step_orders_queued ON boomerang_step_orders (id) WHERE state = 'queued';
CREATE INDEX boomerang_step_orders_job ON boomerang_step_orders (job, attempt);
CREATE INDEX boomerang_step_orders_agent ON boomerang_step_orders (agent) WHERE state = 'running';

-- Each attempt's steps run on one agent (they share its working directory): the first claim places it.
CREATE TABLE boomerang_attempt_agents (
    job text NOT NULL,
    attempt integer NOT NULL,
    agent text NOT NULL,
    PRIMARY KEY (job, attempt)
);
CREATE INDEX boomerang_attempt_agents_agent ON boomerang_attempt_agents (agent);

-- The step agents alive: each renews `seen_until` (the database's clock) while it runs; past it, it is dead.
CREATE TABLE boomerang_step_agents (
    name text PRIMARY KEY,
    host text NOT NULL,
    slots integer NOT NULL,
    seen_until timestamptz NOT NULL
);
