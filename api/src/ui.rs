//! The built-in web UI (`api/ui/`): one HTML page, a script and a style sheet, embedded in the
//! binary, served at `/` and the page paths Prometheus's UI uses (`/query`, `/graph`,
//! `/alerts`, `/rules`, `/status`, `/flags`, `/config`, `/tsdb-status`). The page talks only
//! to the public HTTP API, with relative URLs under a `<base href>`: `/`, or the path of
//! `--web.external-url` when Augur sits behind a proxy that serves it under a path.
//!
//! Assets are addressed with a hash of their content (`static/app.js?v=…`), so they are
//! cached for a year; the page itself is revalidated every time. The web config's
//! authentication and headers apply as to every route (the guard wraps the whole router).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::server::AppState;

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &[u8] = include_bytes!("../ui/app.js");
const STYLE_CSS: &[u8] = include_bytes!("../ui/style.css");

/// The paths that show the page.
pub const PAGES: &[&str] = &[
    "/",
    "/query",
    "/graph",
    "/alerts",
    "/rules",
    "/status",
    "/flags",
    "/config",
    "/tsdb-status",
];

/// A hash of every asset: the page's cache-busting version and the assets' ETag.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (INDEX, APP_JS, STYLE_CSS).hash(&mut h);
        format!("{:016x}", h.finish())
    })
}

/// The UI's routes, to merge into the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    let mut r = Router::new();
    for p in PAGES {
        r = r.route(p, get(page));
    }
    r.route("/static/{file}", get(asset))
}

/// The `<base href>`: the path of `--web.external-url`, ending in `/`.
fn base_href(st: &AppState) -> String {
    let path = st
        .args
        .external_url
        .as_deref()
        .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let path = path.trim_end_matches('/');
    // Only a plain path goes into the attribute.
    if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~%".contains(c))
    {
        format!("{path}/")
    } else {
        "/".into()
    }
}

async fn page(State(st): State<Arc<AppState>>) -> Response {
    let html = INDEX
        .replace("{{BASE}}", &base_href(&st))
        .replace("{{VERSION}}", version());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let etag = format!("\"{}\"", version());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut resp = (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}
