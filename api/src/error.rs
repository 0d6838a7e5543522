//! The API's error type and Prometheus's JSON envelope.
//!
//! Every handler returns `Result<ApiResponse, ApiError>`. Both serialise to Prometheus's
//! envelope: `{"status","data","errorType","error","warnings","infos"}`, with the HTTP status
//! Prometheus uses for each `errorType` (see `NOTES-prometheus-api.md` §2).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use augur_storage::StorageError;

/// An API failure, sorted by who is at fault. The variant decides `errorType` and the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is invalid (bad parameter, unparsable query). 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// The request was valid but evaluating it failed. 422 `execution`.
    #[error("{0}")]
    Execution(String),
    /// The request ran out of time. 503 `timeout`.
    #[error("{0}")]
    Timeout(String),
    /// The client went away. 499 `canceled`.
    #[error("{0}")]
    Canceled(String),
    /// Our own failure. 500 `internal`.
    #[error("{0}")]
    Internal(String),
    /// Not ready yet (recovery still running). 503 `unavailable`.
    #[error("{0}")]
    Unavailable(String),
    /// No such thing. 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
}

impl ApiError {
    pub fn bad_param(name: &str, err: impl std::fmt::Display) -> Self {
        ApiError::BadData(format!("invalid parameter {name:?}: {err}"))
    }

    fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            ApiError::Execution(_) => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Canceled(_) => (
                "canceled",
                StatusCode::from_u16(499).expect("499 is a valid status code"),
            ),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_bad_input() {
            ApiError::BadData(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("request task failed: {e}"))
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    infos: &'a [String],
}

fn json(status: StatusCode, body: &Envelope<'_>) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|e| {
        format!(
            r#"{{"status":"error","errorType":"internal","error":"cannot encode response: {e}"}}"#
        )
        .into_bytes()
    });
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error_type, status) = self.kind();
        json(
            status,
            &Envelope {
                status: "error",
                data: None,
                error_type: Some(error_type),
                error: Some(self.to_string()),
                warnings: &[],
                infos: &[],
            },
        )
    }
}

/// A successful API answer: `data` plus optional warnings and infos.
#[derive(Debug, Default)]
pub struct ApiResponse {
    pub data: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl ApiResponse {
    pub fn new(data: impl Serialize) -> Self {
        ApiResponse {
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            ..ApiResponse::default()
        }
    }

    pub fn with_warning(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}

impl IntoResponse for ApiResponse {
    fn into_response(self) -> Response {
        json(
            StatusCode::OK,
            &Envelope {
                status: "success",
                data: Some(&self.data),
                error_type: None,
                error: None,
                warnings: &self.warnings,
                infos: &self.infos,
            },
        )
    }
}

pub type ApiResult = Result<ApiResponse, ApiError>;
