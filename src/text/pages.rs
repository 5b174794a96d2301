//! Purpose: the sentences the web pages show people: why a page or a form was refused, what a button did, and the
//! names the operator's actions are recorded under.

/// Who a job page's Cancel and Retry buttons are recorded as (the job's events and its check run say it).
pub const OPERATOR: &str = "an operator (job page)";

/// The reason a re-run started from the job page gets, as its check run shows it.
pub fn retry_reason(failed_only: bool) -> String {
    if failed_only {
        "retry of the failed steps from the job page".to_string()
    } else {
        "retry of every step from the job page".to_string()
    }
}

/// A job page opened without a signed link, a session or a token.
pub const JOB_PAGE_NEEDS_LINK: &str = "This job page needs the signed link from its check run, or signing in with a token from API_TOKENS.";

/// The sign-in form was sent with a token that is not one of `API_TOKENS`.
pub const WRONG_TOKEN: &str = "That token is not one of the server's API tokens.";

/// The server has no `API_TOKENS`, so nobody can sign in.
pub const NO_TOKENS: &str = "This server has no API_TOKENS, so nobody can sign in; job pages open only with their signed links.";

/// A form arrived without the token the page put in it (or with another): a cross-site request, or a page that
/// outlived its session.
pub const CSRF_REFUSED: &str = "This form was refused: it did not carry the token of your session. Reload the page and try again.";

/// A form that needs a signed-in operator came without a session.
pub const SIGN_IN_FIRST: &str = "Sign in first: this action needs an operator's session.";

/// Too many people are signed in at once.
pub const TOO_MANY_SESSIONS: &str =
    "Too many sessions are open on this server; try again once some have expired or signed out.";

/// The search page's form was sent with a pattern that does not compile.
pub fn bad_pattern(why: &str) -> String {
    format!("That is not a valid regular expression: {why}")
}

/// The engine refused a Cancel or Retry button (the job ended, or still runs).
pub fn command_refused(what: &str, why: &str) -> String {
    format!("Could not {what} the job: {why}.")
}
