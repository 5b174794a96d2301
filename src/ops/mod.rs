//! Purpose: what operators ask of a running boomerang, as plain functions over the store and the engine that the
//! REST API, the CLI's server and the web pages all call: the list of jobs (`jobs`), cancelling, retrying and
//! purging jobs (`steer`, `purge`), what is queued where (`queue`), and replaying a stored delivery (the trigger's
//! [`crate::trigger::Processor::replay`]).

pub mod jobs;
pub mod purge;
pub mod queue;
pub mod steer;
