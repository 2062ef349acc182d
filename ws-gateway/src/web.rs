//! The browser UI (`web/` at the repo root), embedded in the binary so
//! `cargo run` and the container serve it with no build step. Only the files
//! the page loads are embedded: not its tests or node_modules.

use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use include_dir::{Dir, include_dir};

static APP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/app");
static LIB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../web/lib");
static INDEX: &str = include_str!("../../web/index.html");
static STYLES: &str = include_str!("../../web/styles.css");

/// Routes serving the UI at `/`; merge them beside the gateway's own.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { asset("index.html", INDEX.as_bytes()) }))
        .route("/index.html", get(|| async { asset("index.html", INDEX.as_bytes()) }))
        .route("/styles.css", get(|| async { asset("styles.css", STYLES.as_bytes()) }))
        .route("/app/{*path}", get(|Path(path): Path<String>| async move { from_dir(&APP, &path) }))
        .route("/lib/{*path}", get(|Path(path): Path<String>| async move { from_dir(&LIB, &path) }))
}

fn from_dir(dir: &'static Dir<'static>, path: &str) -> Response {
    match dir.get_file(path) {
        Some(file) => asset(path, file.contents()),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn asset(path: &str, body: &'static [u8]) -> Response {
    let content_type = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    // No build step means no hashed names: let browsers revalidate.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
