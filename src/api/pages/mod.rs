//! Purpose: the web pages for people. Server-rendered HTML from askama templates (`templates/`, checked when the
//! crate compiles), one stylesheet and one script under `/assets/`, no inline script or style (the CSP forbids
//! both), every page usable without JavaScript:
//! - `/sign-in`, `/sign-out` ([`sign_in`]): an operator exchanges a token from `API_TOKENS` for a session cookie.
//! - `/` ([`jobs`]): the jobs, filterable, refreshing itself.
//! - `/jobs/{id}` ([`job`]): one job — step graph, live log, awaited events, Cancel and Retry for an operator. The
//!   signed link from a check run opens this one page read-only, with no way to other pages.
//! - `/queue` ([`queue`]): what waits where, the same facts as `GET /api/v1/queue`.
//! - `/search` ([`search`]): a regex across every job's logs, each hit linking to its line.
//!
//! Every form that changes something is a POST carrying the session's CSRF token ([`Operator::from_form`]).

mod ansi;
mod format;
mod graph;
mod job;
mod job_view;
mod jobs;
mod queue;
mod search;
mod sign_in;

use super::ApiState;
use super::session::{Session, same_secret};
use crate::text::pages as text;
use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

/// The page routes.
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(jobs::jobs_page))
        .route("/queue", get(queue::queue_page))
        .route("/search", get(search::search_page))
        .route(
            "/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/sign-out", axum::routing::post(sign_in::sign_out))
        .merge(job::routes())
        .route("/assets/live.js", get(live_script))
        .route("/assets/page.css", get(page_style))
}

/// What every page's frame needs: the session's CSRF token for the sign-out form (`None`: no navigation at all, as
/// for a signed link) and which page is current in the navigation.
pub(super) struct Chrome {
    /// The session's CSRF token, when an operator is signed in.
    pub(super) csrf: Option<String>,
    /// `jobs`, `queue`, `search` or empty.
    pub(super) current: &'static str,
}

impl Chrome {
    /// The frame of an operator's page.
    fn operator(session: &Session, current: &'static str) -> Chrome {
        Chrome {
            csrf: Some(session.csrf.clone()),
            current,
        }
    }

    /// The frame of a page shown to someone not signed in.
    fn anonymous() -> Chrome {
        Chrome {
            csrf: None,
            current: "",
        }
    }
}

/// A page that says one thing (a refusal, an error).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
    back: Option<String>,
}

/// Renders a template as an HTML answer that no cache keeps (pages show live state and per-session tokens).
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

/// A message page with `status`.
fn message(status: StatusCode, chrome: Chrome, title: &str, message: &str) -> Response {
    render(
        status,
        &MessagePage {
            chrome,
            title: title.to_string(),
            message: message.to_string(),
            back: None,
        },
    )
}

/// Where a visitor without a session is sent.
fn to_sign_in() -> Response {
    Redirect::to("/sign-in").into_response()
}

/// A signed-in operator, proven for a form: the session is live, the form carries its CSRF token, and the
/// request's `Origin` (when the browser sends one) is this server's.
pub(super) struct Operator(pub Session);

impl Operator {
    /// Checks a POST's session, origin and CSRF token; the refusal is a `403` page.
    fn from_form(
        app: &ApiState,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<Operator, Box<Response>> {
        let refuse = |why: &str| {
            Box::new(message(
                StatusCode::FORBIDDEN,
                Chrome::anonymous(),
                "Refused",
                why,
            ))
        };
        if !same_origin(app, headers) {
            return Err(refuse(text::CSRF_REFUSED));
        }
        let Some(session) = app.session(headers) else {
            return Err(refuse(text::SIGN_IN_FIRST));
        };
        match csrf {
            Some(given) if same_secret(given, &session.csrf) => Ok(Operator(session)),
            _ => Err(refuse(text::CSRF_REFUSED)),
        }
    }
}

/// Whether a request's `Origin` header, when it names one, is the server's own (`PUBLIC_URL`'s scheme, host and
/// port). Browsers send `Origin: null` for the pages' own forms (every answer says `Referrer-Policy: no-referrer`),
/// so `null` proves nothing either way and the CSRF token decides.
fn same_origin(app: &ApiState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return true;
    }
    let public = app.links.public_url();
    match (url::Url::parse(origin), url::Url::parse(public)) {
        (Ok(o), Ok(p)) => o.origin() == p.origin(),
        _ => false,
    }
}

/// `GET /assets/live.js`: the pages' script (the job page's live log, follow mode; the jobs list's refresh).
async fn live_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/live.js"),
    )
}

/// `GET /assets/page.css`: the pages' one stylesheet (light and dark).
async fn page_style() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/page.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
