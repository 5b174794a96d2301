//! Purpose: the endpoints: `route` says which paths the sim answers and what each needs, and [`handle`] runs the
//! handler of a route, one file per API area (the App's own endpoints, check runs, issues, repository reads, contents,
//! the tarball, dispatches). Handlers are synchronous and run under the world lock; anything slow (redelivery) is
//! returned as an `After` for the server to do once the lock is released.

mod app;
mod checks;
mod common;
mod contents;
mod dispatch;
mod issues;
mod manifests;
mod repos;
mod route;
mod tarball;

pub(crate) use common::Ctx;
pub(crate) use route::{Route, parse, parse_query};

use common::with_repo;

use crate::reply::{After, Reply};
use crate::state::World;

/// Runs the handler for a route (authentication, repository reach and body were already checked).
pub(crate) fn handle(
    world: &mut World,
    route: Route,
    ctx: &Ctx<'_>,
    after: &mut Vec<After>,
) -> Reply {
    match route {
        Route::CreateToken { installation_id } => app::create_token(world, installation_id, ctx),
        Route::GetApp => app::get_app(world),
        Route::GetRepoInstallation { repo } => app::get_repo_installation(world, &repo),
        Route::ListDeliveries => app::list_deliveries(world, ctx),
        Route::Redeliver { delivery_id } => app::redeliver(world, delivery_id, after),
        Route::CreateCheckRun { repo } => checks::create_check_run(world, &repo, ctx),
        Route::UpdateCheckRun { repo, id } => checks::update_check_run(world, &repo, id, ctx),
        Route::GetCheckRun { repo, id } => checks::get_check_run(world, &repo, id),
        Route::ListCheckRunsForRef { repo, git_ref } => {
            checks::list_check_runs(world, &repo, &git_ref, ctx)
        }
        Route::GetCommit { repo, git_ref } => with_repo(world, &repo, |world, r| {
            repos::get_commit(world, r, &git_ref)
        }),
        Route::CreateDispatch { repo } => dispatch::create_dispatch(world, &repo, ctx),
        Route::CreateWorkflowDispatch { repo, workflow_id } => {
            dispatch::create_workflow_dispatch(world, &repo, workflow_id, ctx)
        }
        Route::GetWorkflowRun { repo, run_id } => dispatch::get_workflow_run(world, &repo, run_id),
        Route::CancelWorkflowRun { repo, run_id } => {
            dispatch::cancel_workflow_run(world, &repo, run_id)
        }
        Route::CreateReaction { repo, comment_id } => {
            issues::create_reaction(world, &repo, comment_id, ctx)
        }
        Route::CreateComment { repo, issue_number } => {
            issues::create_comment(world, &repo, issue_number, ctx)
        }
        Route::GetPermission { repo, username } => {
            with_repo(world, &repo, |_, r| repos::get_permission(r, &username))
        }
        Route::GetContent { repo, path } => with_repo(world, &repo, |world, r| {
            contents::get_content(world, r, &path, ctx)
        }),
        Route::GetPull { repo, number } => {
            with_repo(world, &repo, |world, r| repos::get_pull(world, r, number))
        }
        Route::GetRepo { repo } => repos::get_repo(world, &repo),
        Route::ListPullsForCommit { repo, sha } => repos::list_pulls_for_commit(world, &repo, &sha),
        Route::GetTarball { repo, git_ref } => tarball::get_tarball(world, &repo, git_ref),
        Route::Codeload { repo, git_ref } => tarball::codeload(world, &repo, &git_ref),
        Route::ConvertManifest { code } => manifests::convert(world, &code, ctx),
    }
}
