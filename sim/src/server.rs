//! Purpose: the HTTP side of the simulator: one axum fallback handler that runs every request through the same pipeline
//! (parse, authenticate, rate limits, faults, route, validate the body, handle, add GitHub's headers, record,
//! wake waiters), so no endpoint can skip a check.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{self, Auth};
use crate::fault::FaultKind;
use crate::inner::Inner;
use crate::limits::Admission;
use crate::rate::RateKey;
use crate::records::RecordedCall;
use crate::reply::{After, Reply, ReplyBody};
use crate::routes::{self, Ctx, Route};
use crate::schema::{self, BodySchemas};
use crate::state::World;
use crate::webhooks;

/// Largest request body the sim reads.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The router: everything goes through `handle`.
pub(crate) fn router(inner: Weak<Inner>) -> Router {
    Router::new()
        .route(
            "/settings/apps/new",
            axum::routing::post(crate::web::new_user_app),
        )
        .route(
            "/organizations/{org}/settings/apps/new",
            axum::routing::post(crate::web::new_org_app),
        )
        .fallback(handle)
        .with_state(inner)
}

/// The full outcome of processing one request.
struct Outcome {
    reply: Reply,
    delay: Option<Duration>,
    after: Vec<After>,
}

async fn handle(State(inner): State<Weak<Inner>>, request: Request) -> Response {
    let Some(inner) = inner.upgrade() else {
        return Reply::error(503, "simulator stopped").into_response();
    };
    let at = Instant::now();
    let wall = chrono::Utc::now();
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return Reply::error(413, "Request body too large").into_response(),
    };
    let incoming = Incoming {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: &parts.headers,
        body: &bytes,
        at,
        wall,
    };
    let outcome = process(&mut inner.world(), &incoming);
    inner.notify.notify_waiters();
    for after in outcome.after {
        match after {
            After::Redeliver { delivery_id } => {
                let inner = Arc::clone(&inner);
                tokio::spawn(async move { webhooks::redeliver(&inner, delivery_id).await });
            }
        }
    }
    drop(inner);
    if let Some(delay) = outcome.delay {
        tokio::time::sleep(delay).await;
    }
    outcome.reply.into_response()
}

/// A request as the pipeline sees it.
pub(crate) struct Incoming<'a> {
    /// The method, upper case.
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The raw query string, if any.
    pub(crate) query: Option<String>,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The body as received.
    pub(crate) body: &'a [u8],
    /// When it arrived (monotonic, for the limits).
    pub(crate) at: Instant,
    /// When it arrived (wall clock, for JWT times and records).
    pub(crate) wall: chrono::DateTime<chrono::Utc>,
}

fn process(world: &mut World, req: &Incoming<'_>) -> Outcome {
    world.request_seq += 1;
    let request_id = format!(
        "5E{:06X}:51A1:{:08X}",
        std::process::id() & 0xFF_FFFF,
        world.request_seq
    );
    let authorization = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let auth = auth::authenticate(world, authorization, req.wall);
    let parsed_body: Result<Option<Value>, String> = if req.body.iter().all(u8::is_ascii_whitespace)
    {
        Ok(None)
    } else {
        serde_json::from_slice(req.body)
            .map(Some)
            .map_err(|e| e.to_string())
    };
    let route = routes::parse(&req.method, &req.path);
    let key = match &auth {
        Auth::Token {
            installation_id, ..
        } => RateKey::Installation(*installation_id),
        Auth::Jwt => RateKey::App,
        Auth::None | Auth::Invalid { .. } => RateKey::Anonymous,
    };
    let mut installation_id = match (&auth, &route) {
        (
            Auth::Token {
                installation_id, ..
            },
            _,
        ) => Some(*installation_id),
        (Auth::Jwt, Some(Route::CreateToken { installation_id })) => Some(*installation_id),
        _ => None,
    };
    let mut fault_name = None;
    let mut delay = None;
    let mut after = Vec::new();

    let reply = 'reply: {
        if let Auth::Invalid { message, .. } = &auth {
            break 'reply Reply::error(401, message);
        }
        if let Admission::Rejected(reply) =
            world.admit(key, &req.method, &req.path, req.at, req.wall)
        {
            break 'reply reply;
        }
        if let Some((kind, source)) = world.take_fault(&req.method, &req.path) {
            fault_name = Some(format!("{source}: {kind:?}"));
            match world.fault_reply(&kind, key, req.at) {
                Some(reply) => break 'reply reply,
                None => {
                    if let FaultKind::Delay(d) = kind {
                        delay = Some(d);
                    }
                }
            }
        }
        let Some(route) = route else {
            break 'reply Reply::not_found();
        };
        // Authentication the route needs.
        let jwt_route = route.needs_jwt();
        match (&auth, jwt_route) {
            _ if route.is_public() => {}
            (Auth::None, _) => break 'reply Reply::error(401, "Requires authentication"),
            (Auth::Token { .. }, true) => {
                break 'reply Reply::error(
                    401,
                    "A JSON web token could not be decoded: this endpoint needs an app JWT, not an installation token",
                );
            }
            (Auth::Jwt, false) => {
                break 'reply Reply::error(
                    401,
                    "Bad credentials: this endpoint needs an installation access token, not an app JWT",
                );
            }
            _ => {}
        }
        // The repository and the token's reach.
        if let Some(full_name) = route.repo() {
            let Some(repo) = world.repos.get(&full_name.to_ascii_lowercase()) else {
                break 'reply Reply::not_found();
            };
            if let Auth::Token {
                installation_id: token_installation,
                repositories,
            } = &auth
            {
                let narrowed_out = repositories
                    .as_ref()
                    .is_some_and(|names| !names.contains(&repo.name().to_ascii_lowercase()));
                if *token_installation != repo.installation_id || narrowed_out {
                    break 'reply Reply::not_found();
                }
            }
            if installation_id.is_none() {
                installation_id = Some(repo.installation_id);
            }
        }
        // The body.
        let body = match parsed_body.as_ref() {
            Ok(b) => b.clone(),
            Err(e) => break 'reply Reply::error(400, &format!("Problems parsing JSON: {e}")),
        };
        if let Some((method, template)) = route.operation() {
            if let Some(body) = body.as_ref() {
                let validated = BodySchemas::get().and_then(|s| s.validate(method, template, body));
                let limited = match (validated, route.limited_body()) {
                    (Ok(()), Some(kind)) => schema::documented_limits(kind, body),
                    (other, _) => other,
                };
                if let Err(error) = limited {
                    world.violation(format!(
                        "{} {}: invalid request body: {}",
                        req.method,
                        req.path,
                        error.replace('\n', " ")
                    ));
                    break 'reply Reply::json(
                        422,
                        json!({
                            "message": format!("Invalid request.\n\n{error}"),
                            "documentation_url": "https://docs.github.com/rest",
                            "status": "422",
                        }),
                    );
                }
            } else if route.body_required() {
                world.violation(format!("{} {}: request body missing", req.method, req.path));
                break 'reply Reply::error(400, "Problems parsing JSON");
            }
        }
        let accept = req
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let if_none_match = req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ctx = Ctx {
            method: &req.method,
            path: &req.path,
            query: routes::parse_query(req.query.as_deref()),
            body: body.unwrap_or(Value::Null),
            accept,
            if_none_match,
            now: req.wall,
        };
        routes::handle(world, route, &ctx, &mut after)
    };
    if reply.status == 304 {
        // GitHub does not count a conditional request answered 304 against the primary rate limit.
        world.refund(key, req.at, req.wall);
    }

    let mut reply = reply;
    for (name, value) in world.rate_headers(key, req.at) {
        if !reply.has_header(&name) {
            reply.headers.push((name, value));
        }
    }
    reply
        .headers
        .push(("x-github-request-id".to_owned(), request_id.clone()));
    reply.headers.push((
        "x-github-media-type".to_owned(),
        "github.v3; format=json".to_owned(),
    ));
    if let ReplyBody::Json(Value::Object(map)) = &mut reply.body
        && let Some(Value::String(message)) = map.get_mut("message")
        && message.ends_with("SIM-SECONDARY.")
    {
        *message = message.replace("SIM-SECONDARY", &request_id);
    }

    world.calls.push(RecordedCall {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        status: reply.status,
        body: parsed_body.ok().flatten(),
        auth: auth.kind(),
        installation_id,
        fault: fault_name,
        request_id,
        at: req.at,
        wall: req.wall,
    });
    Outcome {
        reply,
        delay,
        after,
    }
}
