//! Purpose: what setup mode and the start-up checks say to the person installing boomerang: the console lines
//! (the one-time setup link, the credentials refused at start or later), and the setup pages (register for a
//! personal account or an organization, the app registered, what went wrong). The pages are HTML with every value
//! escaped, and no script.

use crate::api::esc;

/// The console lines that announce setup mode and its one-time link.
pub fn setup_link_lines(link: &str) -> String {
    format!(
        "boomerang: no GitHub App credentials yet (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET unset, no {file} in \
         DATA_DIR): setup mode.\nOpen this link to register the GitHub App in one click; it is the only way into \
         the setup page, so keep it to yourself:\n\n    {link}\n",
        file = crate::setup::credentials::FILE_NAME
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · boomerang</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body><main>\
         <h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    )
}

/// The form that posts the manifest to one of GitHub's new-app pages.
fn register_form(action: &str, manifest: &str, label: &str) -> String {
    format!(
        "<form action=\"{}\" method=\"post\"><input type=\"hidden\" name=\"manifest\" value=\"{}\">\
         <button type=\"submit\">{}</button></form>",
        esc(action),
        esc(manifest),
        esc(label)
    )
}

/// The setup page: register the app for the personal account, or for an organization once it is named.
pub fn setup_page(
    token: &str,
    manifest: &str,
    personal_action: &str,
    organization: Option<(&str, &str)>,
) -> String {
    let org_part = match organization {
        Some((org, action)) => format!(
            "<h2>For the organization {o}</h2>{}",
            register_form(action, manifest, &format!("Register boomerang for {org}")),
            o = esc(org)
        ),
        None => format!(
            "<h2>For an organization</h2><form action=\"/setup\" method=\"get\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\"><label>Organization \
             <input name=\"org\" required pattern=\"[A-Za-z0-9-]{{1,39}}\"></label> \
             <button type=\"submit\">Continue</button></form>",
            esc(token)
        ),
    };
    page(
        "Register the GitHub App",
        &format!(
            "<p>boomerang has no GitHub App yet. The button sends GitHub the app's manifest (its permissions, its \
             webhook events and this server's address); GitHub asks you to confirm a name, creates the app and \
             sends you back here. boomerang then stores the app's id, private key and webhook secret in \
             <code>DATA_DIR/{file}</code> and starts serving, without a restart.</p>\
             <h2>For your personal account</h2>{personal}{org_part}\
             <details><summary>The manifest</summary><pre>{m}</pre></details>",
            file = crate::setup::credentials::FILE_NAME,
            personal = register_form(
                personal_action,
                manifest,
                "Register boomerang for my account"
            ),
            m = esc(manifest)
        ),
    )
}

/// The page after the app was registered and boomerang serves with it.
pub fn registered_page(app_id: u64, slug: Option<&str>, install_url: Option<&str>) -> String {
    let install = match install_url {
        Some(url) => format!(
            "<p><a href=\"{}\">Install the app</a> on the repositories it should serve, then add \
             <code>.github/boomerang.yml</code> to their default branch.</p>",
            esc(url)
        ),
        None => {
            "<p>Install the app from its page on GitHub on the repositories it should serve.</p>"
                .into()
        }
    };
    page(
        "boomerang is registered",
        &format!(
            "<p>GitHub App {name} (id {app_id}) is registered, its credentials are stored in \
             <code>DATA_DIR/{file}</code> (mode 0600), and boomerang is serving with them. The setup page is \
             closed.</p>{install}",
            name = esc(slug.unwrap_or("boomerang")),
            file = crate::setup::credentials::FILE_NAME,
        ),
    )
}

/// A page that says what went wrong in setup, and what to do.
pub fn problem_page(problem: &str) -> String {
    page(
        "Setup did not finish",
        &format!(
            "<p>{}</p><p>Open the setup link boomerang printed at start to try again.</p>",
            esc(problem)
        ),
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
