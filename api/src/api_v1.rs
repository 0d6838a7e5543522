//! `/api/v1` handlers for metadata and status, in Prometheus's JSON shapes
//! (`NOTES-prometheus-api.md` §4 lists every shape with its upstream source).

use std::collections::BTreeSet;
use std::sync::Arc;

use augur_storage::{Labels, Matcher, Queryable};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method};
use serde_json::{json, Map, Value};

use crate::config::format_duration;
use crate::error::{ApiError, ApiResponse, ApiResult};
use crate::params::{
    self, limit_param, parse_selector, time_param, unescape_label_name, MAX_TIME_MS, MIN_TIME_MS,
};
use crate::server::AppState;

/// The version reported in `buildinfo`. Grafana decides which Prometheus APIs it may use from
/// this number, so Augur reports the Prometheus API level it implements (as other
/// Prometheus-compatible stores do); Augur's own version is in `augurVersion`.
pub const PROMETHEUS_COMPAT_VERSION: &str = "3.5.0";

/// Request parameters from the query string and, for form POSTs, the body. Keys may repeat.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        // Go's ParseForm reads the body of POST, PUT and PATCH.
        let has_body = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
        if has_body && is_form {
            let body = axum::body::to_bytes(req.into_body(), 64 << 20)
                .await
                .map_err(|e| ApiError::BadData(format!("error parsing form values: {e}")))?;
            // Body values come first, so they win over the query string, as in Go's r.Form.
            let mut form: Vec<(String, String)> =
                form_urlencoded::parse(&body).into_owned().collect();
            form.append(&mut pairs);
            pairs = form;
        }
        Ok(Params(pairs))
    }
}

/// Parses every `match[]` into matcher alternatives; errors are reported bare or with the
/// `invalid parameter "match[]"` prefix, as the endpoint does in Prometheus.
fn matcher_sets(p: &Params, prefixed: bool) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::new();
    for m in p.all("match[]") {
        let alts = parse_selector(m).map_err(|e| {
            if prefixed {
                ApiError::bad_param("match[]", e)
            } else {
                ApiError::BadData(e)
            }
        })?;
        sets.extend(alts);
    }
    Ok(sets)
}

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        time_param("start", p.get("start"), MIN_TIME_MS)?,
        time_param("end", p.get("end"), MAX_TIME_MS)?,
    ))
}

fn labels_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for pair in l {
        m.insert(pair.name.to_owned(), Value::String(pair.value.to_owned()));
    }
    Value::Object(m)
}

/// Cuts a list to `limit` (0 = no limit), with Prometheus's warning when it did.
fn limited<T: serde::Serialize>(mut items: Vec<T>, limit: usize) -> ApiResponse {
    let truncated = limit > 0 && items.len() > limit;
    if truncated {
        items.truncate(limit);
    }
    let resp = ApiResponse::new(items);
    if truncated {
        resp.with_warning("results truncated due to limit")
    } else {
        resp
    }
}

/// Runs blocking storage work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    if p.all("match[]").is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let sets = matcher_sets(&p, true)?;
    let (start, end) = range(&p)?;
    let limit = limit_param(p.get("limit"))?;
    let db = st.db()?.clone();
    let found = blocking(move || {
        let q = db.querier(start, end)?;
        let mut all = BTreeSet::new();
        for ms in &sets {
            all.extend(q.series(ms)?);
        }
        Ok(all)
    })
    .await?;
    Ok(limited(found.iter().map(labels_json).collect(), limit))
}

/// Label names or values (`f`) of all series when no `match[]` was given, else the sorted
/// union over the matcher sets, read within `[start, end]`.
async fn strings_for(
    st: &AppState,
    sets: Vec<Vec<Matcher>>,
    (start, end): (i64, i64),
    f: impl Fn(&dyn augur_storage::Querier, &[Matcher]) -> augur_storage::Result<Vec<String>>
        + Send
        + 'static,
) -> Result<Vec<String>, ApiError> {
    let db = st.db()?.clone();
    blocking(move || {
        let q = db.querier(start, end)?;
        if sets.is_empty() {
            return Ok(f(q.as_ref(), &[])?);
        }
        let mut all = BTreeSet::new();
        for ms in &sets {
            all.extend(f(q.as_ref(), ms)?);
        }
        Ok(all.into_iter().collect())
    })
    .await
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let sets = matcher_sets(&p, false)?;
    let (start, end) = range(&p)?;
    let limit = limit_param(p.get("limit"))?;
    let names = strings_for(&st, sets, (start, end), |q, ms| q.label_names(ms)).await?;
    Ok(limited(names, limit))
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(st): State<Arc<AppState>>,
    uri: axum::http::Uri,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    p: Params,
) -> ApiResult {
    let Ok(Path(name)) = name else {
        // Not valid UTF-8 once percent-decoded: report it like Prometheus, in the envelope.
        let raw = uri
            .path()
            .strip_prefix("/api/v1/label/")
            .and_then(|r| r.strip_suffix("/values"))
            .unwrap_or_default();
        let decoded: Vec<u8> = form_urlencoded::parse(format!("n={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())
            .unwrap_or_default();
        return Err(ApiError::BadData(format!(
            "invalid label name: {:?}",
            String::from_utf8_lossy(&decoded)
        )));
    };
    let name = unescape_label_name(&name);
    if !augur_storage::labels::is_valid_label_name(&name) {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let sets = matcher_sets(&p, false)?;
    let (start, end) = range(&p)?;
    let limit = limit_param(p.get("limit"))?;
    let values = strings_for(&st, sets, (start, end), move |q, ms| {
        q.label_values(&name, ms)
    })
    .await?;
    Ok(limited(values, limit))
}

fn int_or(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::BadData(format!("{name} must be a number"))),
    }
}

/// `GET /api/v1/metadata`.
pub async fn metadata(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let limit = int_or(&p, "limit", -1)?;
    let per_metric = int_or(&p, "limit_per_metric", -1)?;
    let metric = p.get("metric").filter(|m| !m.is_empty()).map(str::to_owned);
    // Copying up to 100k entries is blocking work.
    blocking(move || {
        let data = st.metadata.query(
            metric.as_deref(),
            (limit >= 0).then_some(limit as usize),
            (per_metric > 0).then_some(per_metric as usize),
        );
        Ok(ApiResponse::new(data))
    })
    .await
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> ApiResult {
    Ok(ApiResponse::new(json!({
        "version": PROMETHEUS_COMPAT_VERSION,
        "revision": option_env!("AUGUR_GIT_REVISION").unwrap_or("unknown"),
        "branch": option_env!("AUGUR_GIT_BRANCH").unwrap_or("unknown"),
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "Augur",
        "augurVersion": env!("CARGO_PKG_VERSION"),
    })))
}

/// `GET /api/v1/status/config`.
pub async fn status_config(State(st): State<Arc<AppState>>) -> ApiResult {
    let yaml = serde_yaml::to_string(&*st.config())
        .map_err(|e| ApiError::Internal(format!("cannot render config: {e}")))?;
    Ok(ApiResponse::new(json!({ "yaml": yaml })))
}

/// `GET /api/v1/status/flags`.
pub async fn flags(State(st): State<Arc<AppState>>) -> ApiResult {
    Ok(ApiResponse::new(st.args.flag_map()))
}

fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `GET /api/v1/status/runtimeinfo`.
pub async fn runtimeinfo(State(st): State<Arc<AppState>>) -> ApiResult {
    let (ok, last) = *st.last_reload.lock().unwrap_or_else(|e| e.into_inner());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    Ok(ApiResponse::new(json!({
        "startTime": rfc3339(st.started),
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "hostname": hostname,
        "serverTime": rfc3339(std::time::SystemTime::now()),
        "reloadConfigSuccess": ok,
        "lastConfigTime": rfc3339(last),
        "corruptionCount": 0,
        "goroutineCount": tasks,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": format_duration(st.args.retention_ms),
    })))
}

fn name_values(list: &[(String, u64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect(),
    )
}

/// `GET /api/v1/status/tsdb`.
pub async fn tsdb_status(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 10_000 => {
                return Err(ApiError::BadData("limit must not exceed 10000".into()))
            }
            Ok(n) if n > 0 => n as usize,
            _ => return Err(ApiError::BadData("limit must be a positive number".into())),
        },
    };
    let db = st.db()?.clone();
    blocking(move || {
        let s = db.stats();
        let idx = db.index_stats(limit)?;
        Ok(ApiResponse::new(json!({
            "headStats": {
                "numSeries": s.series,
                "numLabelPairs": idx.label_pairs,
                "chunkCount": s.open_chunks,
                "minTime": s.min_t.unwrap_or(i64::MAX),
                "maxTime": s.max_t.unwrap_or(i64::MIN),
            },
            "seriesCountByMetricName": name_values(&idx.series_by_metric_name),
            "labelValueCountByLabelName": name_values(&idx.value_count_by_label_name),
            "memoryInBytesByLabelName": name_values(&idx.memory_by_label_name),
            "seriesCountByLabelValuePair": name_values(&idx.series_by_label_pair),
        })))
    })
    .await
}

/// `GET /api/v1/status/walreplay`: WAL records replayed at start-up (the server turns ready
/// only after replay, so `current` equals `max` whenever the TSDB is open).
pub async fn walreplay(State(st): State<Arc<AppState>>) -> ApiResult {
    let n = st.db().map_or(0, |db| db.recovery_stats().wal_records);
    Ok(ApiResponse::new(
        json!({ "min": 0, "max": n, "current": n }),
    ))
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`: a consistent copy of the store under
/// `<storage.tsdb.path>/snapshots/<name>`, which `augur serve --storage.tsdb.path=` opens. The
/// name is Prometheus's: UTC time, then 16 random hex digits. `skip_head` is accepted and has
/// no effect: Augur's head is in the store's WAL records, so a copy always includes it.
/// Without `--web.enable-admin-api`: 503 `unavailable`, "admin APIs disabled", as Prometheus.
pub async fn snapshot(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    if !st.args.enable_admin_api {
        return Err(ApiError::Unavailable("admin APIs disabled".into()));
    }
    // Parsed as Go's strconv.ParseBool does, for Prometheus's error on anything else.
    const GO_BOOLS: [&str; 12] = [
        "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
    ];
    match p.get("skip_head") {
        Some(v) if !v.is_empty() && !GO_BOOLS.contains(&v) => {
            return Err(ApiError::bad_param(
                "skip_head",
                format!(
                    "unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing {v:?}: invalid syntax"
                ),
            ));
        }
        _ => {}
    }
    let db = Arc::clone(st.db()?);
    let dir = st.args.tsdb_path.join("snapshots");
    let name = format!(
        "{}-{:016x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        random_u64() >> 1
    );
    let target = dir.join(&name);
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| {
            ApiError::Internal(format!("create snapshot directory {}: {e}", dir.display()))
        })?;
        db.snapshot(&target)
            .map_err(|e| ApiError::Internal(format!("create snapshot: {e}")))
    })
    .await?;
    tracing::info!(name, "snapshot created");
    Ok(ApiResponse::new(json!({ "name": name })))
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…`: deletes the samples
/// in the range (default: all time) of every series matching any `match[]`; answers 204. The
/// samples are gone from reads when it returns (Augur applies deletes at once rather than
/// keeping tombstones) and their bytes leave the disk at the next compaction of their range
/// (`clean_tombstones` forces one). Errors and their order are Prometheus's.
pub async fn delete_series(
    State(st): State<Arc<AppState>>,
    p: Params,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if !st.args.enable_admin_api {
        return Err(ApiError::Unavailable("admin APIs disabled".into()));
    }
    if p.all("match[]").is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = range(&p)?;
    let sets = matcher_sets(&p, true)?;
    let db = Arc::clone(st.db()?);
    let done = blocking(move || Ok(db.delete_series(&sets, start, end)?)).await?;
    tracing::info!(
        series = done.series_matched,
        removed = done.series_removed,
        samples = done.samples_deleted,
        "series deleted"
    );
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`: compacts the store so the space of
/// deleted data comes back now; answers 204 when done.
pub async fn clean_tombstones(
    State(st): State<Arc<AppState>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if !st.args.enable_admin_api {
        return Err(ApiError::Unavailable("admin APIs disabled".into()));
    }
    let db = Arc::clone(st.db()?);
    blocking(move || Ok(db.clean_tombstones()?)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// 64 random bits from the standard library's per-process random hasher keys and the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// `GET /api/v1/targets`: Augur does not scrape, so there are never targets.
pub async fn targets() -> ApiResult {
    Ok(ApiResponse::new(json!({
        "activeTargets": [],
        "droppedTargets": [],
        "droppedTargetCounts": {},
    })))
}

/// `GET|POST /api/v1/query_exemplars`: Augur stores no exemplars yet, so every valid query
/// has none.
pub async fn query_exemplars(p: Params) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // Prometheus reads the time range before the query.
    let (start, end) = range(&p)?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start timestamp".into(),
        ));
    }
    let q = p.get("query").unwrap_or_default();
    let expr = params::parse_promql(q).map_err(|e| ApiError::bad_param("query", e))?;
    if !params::has_selector(&expr) {
        // Nothing to look up: Prometheus answers 204 with no body.
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    Ok(ApiResponse::new(Vec::<Value>::new()).into_response())
}
