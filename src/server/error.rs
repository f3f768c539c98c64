//! Typed HTTP errors: every failure leaves as JSON `{"error": {"status", "code", "parameter",
//! "message", "request_id"}}`, 4xx for what the client can fix (naming the parameter), 5xx
//! for the rest, logged with the request id.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// A stable machine-readable kind, e.g. `invalid_parameter`.
    pub code: &'static str,
    /// The request parameter at fault, when one is.
    pub parameter: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    status: u16,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    /// 400: a parameter is missing, malformed or out of range.
    pub fn invalid(parameter: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_parameter",
            parameter: Some(parameter.to_string()),
            message: message.into(),
        }
    }

    /// 404: what the parameter names does not exist.
    pub fn not_found(parameter: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            parameter: Some(parameter.to_string()),
            message: message.into(),
        }
    }

    /// 500: something that should not fail did; the details go to the log only.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            parameter: None,
            message: message.into(),
        }
    }

    fn with_status(status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            code,
            parameter: None,
            message,
        }
    }

    fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let body = Envelope {
            error: Detail {
                status: self.status.as_u16(),
                code: self.code,
                parameter: self.parameter.as_deref(),
                message: &self.message,
                request_id,
            },
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{}}".to_vec())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body(None)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // The middleware adds the request id to a 5xx and logs it.
        response.extensions_mut().insert(self);
        response
    }
}

/// The HTTP name of an engine parameter: `--personal-weight` → `personal_weight`,
/// `query` → `q`.
fn parameter_name(name: &str) -> String {
    match name.trim_start_matches('-') {
        "query" => "q".to_string(),
        "person" => "user".to_string(),
        other => other.replace('-', "_"),
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match error {
            Error::InvalidArgument { name, message } => {
                let parameter = parameter_name(&name);
                if message.contains("no such") || message.starts_with("no movie titled") {
                    ApiError::not_found(&parameter, message)
                } else {
                    ApiError::invalid(&parameter, message)
                }
            }
            Error::UnknownMovie(id) => ApiError::not_found("movie", format!("unknown movie {id}")),
            Error::Store { .. } => ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                error.to_string(),
            ),
            Error::IndexMissing { .. }
            | Error::IndexCorrupt { .. }
            | Error::IndexIncompatible { .. } => ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_unavailable",
                error.to_string(),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Gives every error response a JSON body (the body-limit, timeout and routing layers answer
/// in plain text), adds the request id to it, and logs 5xx answers with that id.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let method = request.method().clone();
    let uri = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match response.extensions().get::<ApiError>() {
        Some(error) => error.clone(),
        None => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            let reason = parts.status.canonical_reason().unwrap_or("error");
            let code = match parts.status {
                StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                StatusCode::SERVICE_UNAVAILABLE => "timeout",
                StatusCode::NOT_FOUND => "no_route",
                StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                _ if parts.status.is_server_error() => "internal",
                _ => "bad_request",
            };
            let message = if text.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {text}")
            };
            let mut error = ApiError::with_status(parts.status, code, message);
            if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
                error.parameter = Some("body".into());
                error.message = format!(
                    "the body is over the limit of {} bytes",
                    super::MAX_BODY_BYTES
                );
            }
            error
        }
    };
    if status.is_server_error() {
        tracing::error!(
            request_id = request_id.as_deref().unwrap_or("-"),
            "{method} {uri} failed with {status}: {}",
            error.message
        );
    }
    let mut response = (status, error.body(request_id.as_deref())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer to a handler that panicked: a 500 (logged with the request id on the way out);
/// the server keeps serving.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    ApiError::internal(format!("the handler panicked: {what}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_name_http_parameters() {
        let e = ApiError::from(Error::InvalidArgument {
            name: "--personal-weight".into(),
            message: "2 is not within 0..=1".into(),
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.parameter.as_deref(), Some("personal_weight"));
        let e = ApiError::from(Error::InvalidArgument {
            name: "--user".into(),
            message: "999999: no such userId among the ratings of index x".into(),
        });
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.parameter.as_deref(), Some("user"));
        let e = ApiError::from(Error::InvalidArgument {
            name: "query".into(),
            message: "the query is empty".into(),
        });
        assert_eq!(e.parameter.as_deref(), Some("q"));
        let e = ApiError::from(Error::Store {
            store: "sqlite://x".into(),
            message: "disk I/O error".into(),
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
