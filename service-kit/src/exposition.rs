//! How every service answers `GET /metrics`: the OpenMetrics text that
//! `prometheus-client` writes, with the content type that says so.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

/// The content type of `prometheus_client::encoding::text::encode`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `text` (already encoded) as a `/metrics` response.
pub fn metrics_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
