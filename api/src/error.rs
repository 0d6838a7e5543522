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

    /// Prometheus's `errorType` and HTTP status for this error.
    pub fn kind(&self) -> (&'static str, StatusCode) {
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

/// How Prometheus classifies query failures (`api.go` returnAPIError and the
/// `invalidParamError`/`errorBadData` returns of `query`/`queryRange`). The message is the
/// engine's; `query.rs` adds the `invalid parameter "query"` prefix where Prometheus has one.
impl From<augur_engine::Error> for ApiError {
    fn from(e: augur_engine::Error) -> Self {
        use augur_engine::Error as E;
        let msg = e.to_string();
        match e {
            E::Parse(_) | E::BadParameter(_) => ApiError::BadData(msg),
            E::Execution(_) | E::TooManySamples(_) => ApiError::Execution(msg),
            E::Timeout(_) => ApiError::Timeout(msg),
            E::Canceled(_) => ApiError::Canceled(msg),
            // `promql.ErrStorage` is `internal` in Prometheus.
            E::Storage(_) => ApiError::Internal(msg),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("request task failed: {e}"))
    }
}

/// Most warnings and most infos one answer carries; the rest are counted in one more line
/// (`util/annotations/annotations.go` AsStrings, as `api.go` respond calls it).
pub const MAX_ANNOTATIONS: usize = 10;

/// Keeps the first [`MAX_ANNOTATIONS`] and says how many more there were, as Prometheus does.
fn capped(mut list: Vec<String>, kind: &str) -> Vec<String> {
    if list.len() > MAX_ANNOTATIONS {
        let omitted = list.len() - MAX_ANNOTATIONS;
        list.truncate(MAX_ANNOTATIONS);
        list.push(format!("{omitted} more {kind} annotations omitted"));
    }
    list
}

/// Appends `v` as JSON. Writing into a `Vec` cannot fail, and neither can serialising strings
/// or a `serde_json::Value`.
pub(crate) fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(out, v);
}

/// Prometheus's envelope, fields in its order:
/// `{"status","data","errorType","error","warnings","infos"}`, empty ones left out.
fn envelope(
    status: StatusCode,
    data: Option<&[u8]>,
    error: Option<(&str, &str)>,
    warnings: &[String],
    infos: &[String],
) -> Response {
    let mut out = Vec::with_capacity(data.map_or(0, <[u8]>::len) + 64);
    out.extend_from_slice(if error.is_some() {
        br#"{"status":"error""#
    } else {
        br#"{"status":"success""#
    });
    if let Some(d) = data {
        out.extend_from_slice(br#","data":"#);
        out.extend_from_slice(d);
    }
    if let Some((kind, msg)) = error {
        out.extend_from_slice(br#","errorType":"#);
        push_json(&mut out, kind);
        out.extend_from_slice(br#","error":"#);
        push_json(&mut out, msg);
    }
    if !warnings.is_empty() {
        out.extend_from_slice(br#","warnings":"#);
        push_json(&mut out, warnings);
    }
    if !infos.is_empty() {
        out.extend_from_slice(br#","infos":"#);
        push_json(&mut out, infos);
    }
    out.push(b'}');
    let mut resp = (status, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error_type, status) = self.kind();
        envelope(
            status,
            None,
            Some((error_type, &self.to_string())),
            &[],
            &[],
        )
    }
}

/// The `data` of a successful answer.
#[derive(Debug)]
pub enum Data {
    /// Serialised with serde.
    Json(Value),
    /// Already JSON text. Query results are written directly, in Prometheus's own number
    /// formats (see `query.rs`), without building a `Value` tree first.
    Raw(Vec<u8>),
}

impl Default for Data {
    fn default() -> Self {
        Data::Json(Value::Null)
    }
}

/// A successful API answer: `data` plus optional warnings and infos.
#[derive(Debug, Default)]
pub struct ApiResponse {
    pub data: Data,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl ApiResponse {
    pub fn new(data: impl Serialize) -> Self {
        ApiResponse {
            data: Data::Json(serde_json::to_value(data).unwrap_or(Value::Null)),
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
        let data = match self.data {
            Data::Json(v) => {
                let mut out = Vec::new();
                push_json(&mut out, &v);
                out
            }
            Data::Raw(raw) => raw,
        };
        envelope(
            StatusCode::OK,
            Some(&data),
            None,
            &capped(self.warnings, "warning"),
            &capped(self.infos, "info"),
        )
    }
}

pub type ApiResult = Result<ApiResponse, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_capped_like_prometheus() {
        let few: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(capped(few.clone(), "warning"), few);
        let many: Vec<String> = (0..13).map(|i| i.to_string()).collect();
        let got = capped(many, "info");
        assert_eq!(got.len(), 11);
        assert_eq!(got[9], "9");
        assert_eq!(got[10], "3 more info annotations omitted");
    }

    #[test]
    fn engine_errors_get_prometheus_error_types() {
        use augur_engine::Error as E;
        let cases = [
            (E::Parse("parse error: x".into()), "bad_data", 400),
            (E::BadParameter("bad step".into()), "bad_data", 400),
            (E::Execution("many-to-many".into()), "execution", 422),
            (E::TooManySamples("query execution"), "execution", 422),
            (E::Timeout("expression evaluation"), "timeout", 503),
            (E::Canceled("expression evaluation"), "canceled", 499),
        ];
        for (e, kind, status) in cases {
            let msg = e.to_string();
            let api = ApiError::from(e);
            assert_eq!(api.kind(), (kind, StatusCode::from_u16(status).unwrap()));
            assert_eq!(api.to_string(), msg, "the engine's message is kept");
        }
    }
}
