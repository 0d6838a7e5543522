//! `GET|POST /api/v1/query` and `/api/v1/query_range`: PromQL over HTTP as Prometheus serves it.
//!
//! Parameters, their checking order and the error messages follow `web/api/v1/api.go`
//! (`query`, `queryRange`, `extractQueryOpts`, `returnAPIError`); result JSON follows
//! `web/api/v1/json_codec.go` and `util/jsonutil/marshal.go`, number formats included:
//! vector and matrix timestamps are seconds with exactly three decimals when not whole
//! (`1435781451.780`), their values Go's shortest float with an exponent below 1e-6 and from
//! 1e21 (`"1e-07"`); scalar and string results use `float64(t)/1000` and always plain digits
//! (`promql/value.go`).
//!
//! The engine is synchronous and CPU-bound, so a query runs on a thread of its own (with a
//! stack deep enough for the longest query accepted), at most `--query.max-concurrency` at
//! once. Waiting for a slot counts against the query's timeout; running out of time there
//! is `execution` / `context deadline exceeded`, as in Prometheus. If the request future is
//! dropped (the client went away), a guard sets the query's cancel flag and the engine stops
//! at its next check.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use augur_engine::{GoExp, GoFloat, QueryOptions, QueryResult, Value, MAX_POINTS_PER_SERIES};
use augur_storage::histogram::Histogram;
use augur_storage::{Labels, Queryable};
use axum::extract::State;
use prometheus_client::metrics::gauge::Gauge;

use crate::api_v1::Params;
use crate::error::{push_json, ApiError, ApiResponse, ApiResult, Data};
use crate::metrics::OutcomeLabels;
use crate::params::{check_complexity, limit_param, parse_duration, parse_time, time_param};
use crate::server::AppState;

/// `GET|POST /api/v1/query`: `query`, `time` (default now), `timeout`, `lookback_delta`,
/// `limit`.
pub async fn query(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let limit = limit_param(p.get("limit"))?;
    let t = time_param("time", p.get("time"), now_ms())?;
    run(&st, &p, limit, move |st, db, q, opts| {
        st.engine.instant(db, q, t, opts)
    })
    .await
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step` (all required),
/// `timeout`, `lookback_delta`, `limit`.
pub async fn query_range(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let limit = limit_param(p.get("limit"))?;
    let start = parse_time(p.get("start").unwrap_or_default())
        .map_err(|e| ApiError::bad_param("start", e))?;
    let end =
        parse_time(p.get("end").unwrap_or_default()).map_err(|e| ApiError::bad_param("end", e))?;
    if end < start {
        return Err(ApiError::bad_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(p.get("step").unwrap_or_default())
        .map_err(|e| ApiError::bad_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::bad_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Wide enough that MIN_TIME..MAX_TIME cannot overflow.
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS_PER_SERIES)
    {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    run(&st, &p, limit, move |st, db, q, opts| {
        st.engine.range(db, q, start, end, step, opts)
    })
    .await
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `timeout`: a Prometheus duration or float seconds; float seconds keep their
/// sub-millisecond part (Go durations are nanoseconds). Zero or negative means already expired.
fn timeout_param(p: &Params) -> Result<Option<Duration>, ApiError> {
    let Some(s) = p.get("timeout").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ms = parse_duration(s).map_err(|e| ApiError::bad_param("timeout", e))?;
    // `parse_duration` accepted it, so a float here is finite and in range.
    Ok(Some(match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => Duration::ZERO,
        Err(_) => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
    }))
}

/// `lookback_delta`: zero or negative means the engine's (`--query.lookback-delta`).
fn lookback_param(p: &Params) -> Result<Option<i64>, ApiError> {
    match p.get("lookback_delta").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_duration(s)
            .map(|ms| (ms > 0).then_some(ms))
            .map_err(|e| ApiError::BadData(format!("error parsing lookback delta duration: {e}"))),
    }
}

/// The query text. Prometheus's parser reports a query with no expression without a position.
/// Too deep or too long a query is refused here, before it reaches the parser.
fn query_text(p: &Params) -> Result<String, ApiError> {
    let q = p.get("query").unwrap_or_default();
    if q.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err(ApiError::bad_param(
            "query",
            "unknown position: parse error: no expression found in input",
        ));
    }
    // The evaluator recurses per level, and long chains take the parser quadratic time.
    check_complexity(q).map_err(|e| ApiError::bad_param("query", e))?;
    Ok(q.to_owned())
}

/// Engine errors as Prometheus reports them: errors of the query text are
/// `invalid parameter "query": …` (Prometheus gets them from `NewInstantQuery` /
/// `NewRangeQuery`, which parse and type-check); the rest keep the engine's message.
fn query_error(e: augur_engine::Error) -> ApiError {
    use augur_engine::Error as E;
    match e {
        E::Parse(m) => ApiError::bad_param("query", m),
        e => e.into(),
    }
}

/// Sets the flag when dropped. Dropped with the request future, so a client that goes away
/// cancels its query; dropping it after the query finished is harmless.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Counts a query in `augur_engine_queries` from arrival until its evaluation ends.
struct InFlight(Gauge);

impl InFlight {
    fn new(g: &Gauge) -> InFlight {
        g.inc();
        InFlight(g.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Stack of a query's thread. The engine recurses once per level of the expression, and a
/// chain like `a + b + c …` is as deep as it is long (up to
/// [`crate::params::MAX_OPERATORS`] levels). Go's growable stacks take any depth; tokio's
/// 2 MiB blocking threads overflowed, aborting the process, at 10,000 terms. Only the pages a
/// query touches are committed.
const QUERY_STACK_BYTES: usize = 64 << 20;

/// Runs `f` on its own thread once a query slot is free, with the request's limits, and
/// renders its result cut to `limit` series. The time limit is the smaller of `timeout` and
/// `--query.timeout`, counted from when `timeout` was read.
async fn run<F>(st: &Arc<AppState>, p: &Params, limit: usize, f: F) -> ApiResult
where
    F: FnOnce(&AppState, &dyn Queryable, &str, &QueryOptions) -> augur_engine::Result<QueryResult>
        + Send
        + 'static,
{
    // The parameters both endpoints share, checked after each endpoint's own, in
    // Prometheus's order; the time budget starts once `timeout` is known.
    let timeout = timeout_param(p)?;
    let started = Instant::now();
    let lookback_delta_ms = lookback_param(p)?;
    let q = query_text(p)?;
    let db = Arc::clone(st.db()?);
    let max = st.engine.options().timeout;
    let time_limit = timeout.map_or(max, |t| t.min(max));
    let in_flight = InFlight::new(&st.metrics.engine_queries);
    let permit = match tokio::time::timeout(
        time_limit.saturating_sub(started.elapsed()),
        Arc::clone(&st.query_slots).acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Err(ApiError::Unavailable("the server is shutting down".into())),
        Err(_) => {
            // Prometheus's query tracker returns the bare context error here, which
            // `returnAPIError` classifies as `execution`.
            count(st, "execution");
            return Err(ApiError::Execution("context deadline exceeded".into()));
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    let opts = QueryOptions {
        lookback_delta_ms,
        timeout: Some(time_limit.saturating_sub(started.elapsed())),
        cancel: Some(cancel),
        // Prometheus's default subquery step is the global evaluation interval; a reload
        // applies to the next query.
        default_subquery_step_ms: Some(st.config().global.evaluation_interval.0),
        // Implicit subqueries: a range query's step, else the default above.
        implicit_subquery_step_ms: None,
    };
    let st = Arc::clone(st);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("augur-query".into())
        .stack_size(QUERY_STACK_BYTES)
        .spawn(move || {
            let result = f(&st, db.as_ref(), &q, &opts).map_err(query_error);
            drop((permit, in_flight));
            // Counted here, not after the await: a cancelled request never gets there.
            count(&st, result.as_ref().err().map_or("success", |e| e.kind().0));
            // Rendered here too: a large result is too much work for an async worker.
            let _ = tx.send(result.map(|r| respond(r, limit)));
        })
        .map_err(|e| ApiError::Internal(format!("cannot start a query thread: {e}")))?;
    rx.await
        .map_err(|_| ApiError::Internal("query evaluation failed unexpectedly (panic)".into()))?
}

fn count(st: &AppState, outcome: &str) {
    st.metrics
        .engine_query_outcomes
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Applies `limit` (series kept, others dropped with Prometheus's warning) and renders.
fn respond(result: QueryResult, limit: usize) -> ApiResponse {
    let QueryResult {
        mut value,
        mut warnings,
        infos,
    } = result;
    let truncated = limit > 0
        && match &mut value {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        };
    if truncated {
        warnings.push("results truncated due to limit".into());
    }
    ApiResponse {
        data: Data::Raw(render(&value)),
        warnings,
        infos,
    }
}

/// `{"resultType":…,"result":…}` in Prometheus's exact JSON.
pub fn render(value: &Value) -> Vec<u8> {
    let points = match value {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m
            .iter()
            .map(|s| s.samples.len() + 8 * s.histograms.len() + 4)
            .sum(),
        _ => 1,
    };
    let mut out = Vec::with_capacity(64 + points * 24);
    out.extend_from_slice(br#"{"resultType":"#);
    push_json(&mut out, value.type_name());
    out.extend_from_slice(br#","result":"#);
    match value {
        Value::Scalar(s) => {
            out.push(b'[');
            push_seconds_float(&mut out, s.t);
            out.extend_from_slice(b",\"");
            push_go_float(&mut out, s.v);
            out.extend_from_slice(b"\"]");
        }
        Value::String(t, s) => {
            out.push(b'[');
            push_seconds_float(&mut out, *t);
            out.push(b',');
            push_json(&mut out, s.as_str());
            out.push(b']');
        }
        Value::Vector(elements) => {
            out.push(b'[');
            for (i, e) in elements.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                push_labels(&mut out, &e.labels);
                match &e.h {
                    Some(h) => {
                        out.extend_from_slice(br#","histogram":"#);
                        push_histogram_point(&mut out, e.t, h);
                    }
                    None => {
                        out.extend_from_slice(br#","value":"#);
                        push_point(&mut out, e.t, e.v);
                    }
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::Matrix(series) => {
            out.push(b'[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"metric":"#);
                push_labels(&mut out, &s.labels);
                // A series without points has no "values" key at all.
                for (j, p) in s.samples.iter().enumerate() {
                    out.extend_from_slice(if j == 0 { br#","values":["# } else { b"," });
                    push_point(&mut out, p.t, p.v);
                }
                if !s.samples.is_empty() {
                    out.push(b']');
                }
                for (j, h) in s.histograms.iter().enumerate() {
                    out.extend_from_slice(if j == 0 { br#","histograms":["# } else { b"," });
                    push_histogram_point(&mut out, h.t, &h.h);
                }
                if !s.histograms.is_empty() {
                    out.push(b']');
                }
                out.push(b'}');
            }
            out.push(b']');
        }
    }
    out.push(b'}');
    out
}

fn push_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json(out, l.name);
        out.push(b':');
        push_json(out, l.value);
    }
    out.push(b'}');
}

/// `[<timestamp>,"<value>"]` of a vector or matrix point.
fn push_point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    push_timestamp(out, t);
    out.extend_from_slice(b",\"");
    push_sample_value(out, v);
    out.extend_from_slice(b"\"]");
}

/// `[<timestamp>,{"count":…,"sum":…,"buckets":[[rule,"lower","upper","count"],…]}]`, as
/// Prometheus writes a native histogram point: buckets with no observations are left out, and
/// so is `buckets` when none is left.
fn push_histogram_point(out: &mut Vec<u8>, t: i64, h: &Histogram) {
    out.push(b'[');
    push_timestamp(out, t);
    out.extend_from_slice(br#",{"count":""#);
    push_sample_value(out, h.count);
    out.extend_from_slice(br#"","sum":""#);
    push_sample_value(out, h.sum);
    out.push(b'"');
    let buckets: Vec<_> = h.buckets().into_iter().filter(|b| b.count != 0.0).collect();
    for (i, b) in buckets.iter().enumerate() {
        out.extend_from_slice(if i == 0 { br#","buckets":["# } else { b"," });
        let _ = write!(out, "[{},\"", b.boundary_rule());
        push_sample_value(out, b.lower);
        out.extend_from_slice(b"\",\"");
        push_sample_value(out, b.upper);
        out.extend_from_slice(b"\",\"");
        push_sample_value(out, b.count);
        out.extend_from_slice(b"\"]");
    }
    if !buckets.is_empty() {
        out.push(b']');
    }
    out.extend_from_slice(b"}]");
}

/// `jsonutil.MarshalTimestamp`: whole seconds, then `.` and exactly three digits when the
/// milliseconds are not zero.
fn push_timestamp(out: &mut Vec<u8>, t: i64) {
    if t < 0 {
        out.push(b'-');
    }
    let abs = t.unsigned_abs();
    let _ = write!(out, "{}", abs / 1000);
    if !abs.is_multiple_of(1000) {
        let _ = write!(out, ".{:03}", abs % 1000);
    }
}

/// `float64(t)/1000` as Go's JSON encoder writes it (scalar and string results).
fn push_seconds_float(out: &mut Vec<u8>, t: i64) {
    // Timestamps are far from both of Go's exponent thresholds (1e-6 and 1e21).
    let _ = write!(out, "{}", t as f64 / 1000.0);
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that read back as `v`, never an
/// exponent; `NaN`, `+Inf`, `-Inf`.
fn push_go_float(out: &mut Vec<u8>, v: f64) {
    let _ = write!(out, "{}", GoFloat(v));
}

/// `jsonutil.MarshalFloat`: like [`push_go_float`], but Go's `'e'` format (`1e-07`,
/// `1.5e+21`: shortest mantissa, signed exponent of at least two digits) when
/// `|v| < 1e-6` or `|v| >= 1e21`.
fn push_sample_value(out: &mut Vec<u8>, v: f64) {
    let a = v.abs();
    if !a.is_finite() || a == 0.0 || (1e-6..1e21).contains(&a) {
        push_go_float(out, v);
        return;
    }
    let _ = write!(out, "{}", GoExp::lower(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_engine::Element;
    use augur_storage::{Sample, Series};

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// Cases from Prometheus's `web/api/v1/json_codec_test.go` (points) and Go's
    /// `strconv.FormatFloat`.
    #[test]
    fn points_format_like_prometheus() {
        let cases: &[(i64, f64, &str)] = &[
            (0, 0.0, r#"[0,"0"]"#),
            (1, 20.0, r#"[0.001,"20"]"#),
            (10, 20.0, r#"[0.010,"20"]"#),
            (100, 20.0, r#"[0.100,"20"]"#),
            (1001, 20.0, r#"[1.001,"20"]"#),
            (1010, 20.0, r#"[1.010,"20"]"#),
            (1100, 20.0, r#"[1.100,"20"]"#),
            (12345678123456555, 20.0, r#"[12345678123456.555,"20"]"#),
            (-1, 20.0, r#"[-0.001,"20"]"#),
            (-1500, 20.0, r#"[-1.500,"20"]"#),
            (0, f64::NAN, r#"[0,"NaN"]"#),
            (0, f64::INFINITY, r#"[0,"+Inf"]"#),
            (0, f64::NEG_INFINITY, r#"[0,"-Inf"]"#),
            (0, 1.2345678e6, r#"[0,"1234567.8"]"#),
            (0, 1.2345678e-6, r#"[0,"0.0000012345678"]"#),
            (0, 1.2345678e-67, r#"[0,"1.2345678e-67"]"#),
            (0, 1e-7, r#"[0,"1e-07"]"#),
            (0, -1e-7, r#"[0,"-1e-07"]"#),
            (0, 1e21, r#"[0,"1e+21"]"#),
            (0, 1.5e300, r#"[0,"1.5e+300"]"#),
            (0, 1e20, r#"[0,"100000000000000000000"]"#),
            (0, 0.1, r#"[0,"0.1"]"#),
            (0, -0.0, r#"[0,"-0"]"#),
            (0, 1e-6, r#"[0,"0.000001"]"#),
        ];
        for &(t, v, want) in cases {
            assert_eq!(text(|o| push_point(o, t, v)), want, "t={t} v={v:e}");
        }
    }

    #[test]
    fn results_render_like_prometheus() {
        let labels = Labels::new([("__name__", "up"), ("job", "a\"b")]).unwrap();
        let cases = [
            (
                Value::Scalar(Sample::new(1_435_781_451_780, 1e-7)),
                r#"{"resultType":"scalar","result":[1435781451.78,"0.0000001"]}"#,
            ),
            (
                Value::Scalar(Sample::new(1000, f64::NEG_INFINITY)),
                r#"{"resultType":"scalar","result":[1,"-Inf"]}"#,
            ),
            (
                Value::String(1500, "a\"b".into()),
                r#"{"resultType":"string","result":[1.5,"a\"b"]}"#,
            ),
            (
                Value::Vector(vec![]),
                r#"{"resultType":"vector","result":[]}"#,
            ),
            (
                Value::Vector(vec![
                    Element {
                        labels: labels.clone(),
                        t: 1000,
                        v: 1.0,
                        h: None,
                    },
                    Element {
                        labels: Labels::default(),
                        t: 2500,
                        v: 2.5,
                        h: None,
                    },
                ]),
                r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"1"]},{"metric":{},"value":[2.500,"2.5"]}]}"#,
            ),
            (
                Value::Matrix(vec![
                    Series {
                        labels: labels.clone(),
                        samples: vec![Sample::new(1000, 1.0), Sample::new(16_000, f64::NAN)],
                        start_timestamps: vec![],
                        histograms: Vec::new(),
                    },
                    Series {
                        labels: Labels::default(),
                        samples: vec![],
                        start_timestamps: vec![],
                        histograms: Vec::new(),
                    },
                ]),
                r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[1,"1"],[16,"NaN"]]},{"metric":{}}]}"#,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(String::from_utf8(render(&value)).unwrap(), want);
        }
    }

    #[test]
    fn limit_truncates_vectors_and_matrices_only() {
        let el = |v| Element {
            labels: Labels::default(),
            t: 0,
            v,
            h: None,
        };
        let result = |value| QueryResult {
            value,
            warnings: vec![],
            infos: vec![],
        };
        let r = respond(result(Value::Vector(vec![el(1.0), el(2.0)])), 1);
        assert_eq!(r.warnings, ["results truncated due to limit"]);
        let r = respond(result(Value::Vector(vec![el(1.0), el(2.0)])), 2);
        assert!(r.warnings.is_empty(), "exactly `limit` results: no warning");
        let r = respond(result(Value::Scalar(Sample::new(0, 1.0))), 1);
        assert!(r.warnings.is_empty());
    }

    /// The plumbing behind client disconnects: dropping the request future sets the flag the
    /// blocking evaluation watches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_request_cancels_the_blocking_work() {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = Arc::clone(&cancel);
        let request = async move {
            let _guard = CancelOnDrop(cancel);
            tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                while !seen.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = tx.send(seen.load(Ordering::Relaxed));
            })
            .await
        };
        // The "client" gives up after 50 ms: the request future is dropped.
        assert!(tokio::time::timeout(Duration::from_millis(50), request)
            .await
            .is_err());
        let saw_cancel = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        assert!(saw_cancel, "the blocking work saw the cancel flag");
    }
}
