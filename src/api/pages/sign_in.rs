//! Purpose: signing in and out. `GET /sign-in` shows the form with a double-submit CSRF token (a random value both
//! in a short-lived cookie and in the form: a cross-site page can send neither); `POST /sign-in` checks it and the
//! token, then sets the session cookie; `POST /sign-out` (with the session's CSRF token) ends the session on the
//! server and deletes the cookie.

use super::{Chrome, Operator, message, render};
use crate::api::ApiState;
use crate::api::session::{
    SESSION_COOKIE, SESSION_TTL, SIGN_IN_COOKIE, cookie, random_token, same_secret, set_cookie,
};
use crate::text::pages as text;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// How long the sign-in form's CSRF cookie lasts.
const SIGN_IN_FORM_SECS: i64 = 3600;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    error: Option<String>,
    hours: i64,
}

/// The form, with a new double-submit token in its cookie and its hidden field.
fn form(app: &ApiState, status: StatusCode, error: Option<&str>) -> Response {
    let Some(csrf) = random_token() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness available").into_response();
    };
    let mut res = render(
        status,
        &SignInPage {
            chrome: Chrome::anonymous(),
            csrf: csrf.clone(),
            error: error.map(str::to_string),
            hours: SESSION_TTL.num_hours(),
        },
    );
    add_cookie(
        &mut res,
        &set_cookie(
            SIGN_IN_COOKIE,
            &csrf,
            SIGN_IN_FORM_SECS,
            app.secure_cookies(),
        ),
    );
    res
}

fn add_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `GET /sign-in`.
pub(super) async fn sign_in_page(State(app): State<ApiState>, headers: HeaderMap) -> Response {
    if app.session(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    form(&app, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    csrf: Option<String>,
    token: Option<String>,
}

/// `POST /sign-in`.
pub(super) async fn sign_in(
    State(app): State<ApiState>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let double_submit = match (cookie(&headers, SIGN_IN_COOKIE), f.csrf.as_deref()) {
        (Some(kept), Some(sent)) => same_secret(kept, sent),
        _ => false,
    };
    if !double_submit || !super::same_origin(&app, &headers) {
        return message(
            StatusCode::FORBIDDEN,
            Chrome::anonymous(),
            "Refused",
            text::CSRF_REFUSED,
        );
    }
    if app.api_tokens.is_empty() {
        return message(
            StatusCode::FORBIDDEN,
            Chrome::anonymous(),
            "Sign in",
            text::NO_TOKENS,
        );
    }
    let given = f.token.unwrap_or_default();
    let given = given.trim();
    let known = app.api_tokens.iter().find(|t| same_secret(t, given));
    let Some(token) = known else {
        tracing::warn!("a sign-in with a wrong token");
        return form(&app, StatusCode::UNAUTHORIZED, Some(text::WRONG_TOKEN));
    };
    let Some(id) = app.sessions.open(token, app.clock.now()) else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            Chrome::anonymous(),
            "Sign in",
            text::TOO_MANY_SESSIONS,
        );
    };
    let secure = app.secure_cookies();
    let mut res = Redirect::to("/").into_response();
    add_cookie(
        &mut res,
        &set_cookie(SESSION_COOKIE, &id, SESSION_TTL.num_seconds(), secure),
    );
    add_cookie(&mut res, &set_cookie(SIGN_IN_COOKIE, "", 0, secure));
    res
}

#[derive(Deserialize)]
pub(super) struct SignOutForm {
    csrf: Option<String>,
}

/// `POST /sign-out`.
pub(super) async fn sign_out(
    State(app): State<ApiState>,
    headers: HeaderMap,
    Form(f): Form<SignOutForm>,
) -> Response {
    if let Err(refused) = Operator::from_form(&app, &headers, f.csrf.as_deref()) {
        return *refused;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        app.sessions.close(id);
    }
    let mut res = Redirect::to("/sign-in").into_response();
    add_cookie(
        &mut res,
        &set_cookie(SESSION_COOKIE, "", 0, app.secure_cookies()),
    );
    res
}
