//! The web page served at `/`: plain HTML, CSS and JavaScript embedded in the binary (no CDN,
//! no build chain), talking to the JSON API like any other client.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/style.css");

/// Every asset may be cached a little; the page itself is always fetched again.
const ASSET_CACHE: &str = "public, max-age=300";

/// `body` as `content_type`, cached for `cache_control`.
fn asset(content_type: &'static str, cache_control: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache_control),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", "no-cache", PAGE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", ASSET_CACHE, SCRIPT)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", ASSET_CACHE, STYLE)
}
