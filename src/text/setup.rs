//! Purpose: what setup mode and the start-up checks say to the person installing boomerang: the console lines
//! (the one-time setup link, the credentials refused at start or later) and the setup flow's refusals. The setup
//! pages themselves are HTML, in `crate::setup::pages`.

/// The console lines that announce setup mode and its one-time link.
pub fn setup_link_lines(link: &str, file: &str) -> String {
    format!(
        "boomerang: no GitHub App credentials yet (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET unset, no {file} in \
         DATA_DIR): setup mode.\nOpen this link to register the GitHub App in one click; it is the only way into \
         the setup page, so keep it to yourself:\n\n    {link}\n"
    )
}

/// What a GitHub 401 means to the operator (start-up, a delivery's note, the logs).
pub const CHECK_CREDENTIALS: &str = "check APP_ID and the private key";

/// The start-up line when GitHub refuses the App's JWT.
pub fn credentials_refused(error: &impl std::fmt::Display) -> String {
    format!(
        "APP_ID / PRIVATE_KEY: GitHub refused the App's credentials ({error}): {CHECK_CREDENTIALS}"
    )
}

/// A delivery's note when GitHub answered 401 while processing it.
pub fn delivery_credentials_refused(error: &impl std::fmt::Display) -> String {
    format!(
        "configuration error: GitHub refused the App's credentials ({error}); {CHECK_CREDENTIALS}, then \
         restart boomerang. The delivery was not processed."
    )
}

/// The callback's `state` is not one this setup issued (or was used already).
pub const UNKNOWN_STATE: &str = "This answer from GitHub does not carry a state this setup page issued (or it was \
     used already), so it is refused: only a registration started from this server's setup page is accepted.";
/// The callback has no usable `code`.
pub const BAD_CODE: &str = "GitHub's answer carries no usable code.";
/// Webhooks that arrive before the app is registered.
pub const WEBHOOK_IN_SETUP: &str =
    "boomerang is in setup mode: no GitHub App is registered on this server yet";
/// The registered App's credentials could not be written to `DATA_DIR`.
pub fn not_stored(app_id: u64, error: &impl std::fmt::Display) -> String {
    format!(
        "GitHub registered app {app_id} but its credentials could not be stored ({error}); delete the app on \
         GitHub and try again once DATA_DIR is writable."
    )
}

/// A registration that arrives when setup mode no longer takes one.
pub const NOT_WAITING: &str = "boomerang is no longer waiting for a registration: another one finished first, or \
     it is shutting down. The App it serves with is the one in its credentials file; delete this one on GitHub.";
