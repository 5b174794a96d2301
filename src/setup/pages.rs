//! Purpose: the setup pages (register for a personal account or an organization, the app registered, what went
//! wrong). HTML with every value escaped, and no script (the CSP allows none).

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
pub(super) fn setup_page(
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
            file = super::credentials::FILE_NAME,
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
pub(super) fn registered_page(
    app_id: u64,
    slug: Option<&str>,
    install_url: Option<&str>,
) -> String {
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
            file = super::credentials::FILE_NAME,
        ),
    )
}

/// A page that says what went wrong in setup, and what to do.
pub(super) fn problem_page(problem: &str) -> String {
    page(
        "Setup did not finish",
        &format!(
            "<p>{}</p><p>Open the setup link boomerang printed at start to try again.</p>",
            esc(problem)
        ),
    )
}
