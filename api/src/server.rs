//! The HTTP server: state, routes, start-up, readiness, reload and graceful shutdown.
//!
//! Start-up order: load the config (a bad config stops start-up with the error), bind the
//! listener, serve at once with `/-/ready` answering 503, and open the TSDB (recovery) on a
//! blocking thread; when it is open the server turns ready. Shutdown stops accepting, lets
//! in-flight requests finish, then checkpoints the TSDB.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use augur_storage::{Options as TsdbOptions, Tsdb};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{watch, Notify};

use crate::api_v1;
use crate::config::Config;
use crate::error::ApiError;
use crate::flags::ServeArgs;
use crate::metadata::MetadataStore;
use crate::metrics::{
    HandlerLabels, Metrics, NotifierCollector, RequestLabels, RulesCollector, TsdbCollector,
};
use crate::query;
use crate::remote_write::{self, WriteError};
use crate::web_config::{Access, WebConfig};

/// Remote-write requests processed at once; more wait up to [`WRITE_QUEUE_WAIT`].
const WRITE_SLOTS: usize = 8;
const WRITE_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long shutdown waits for open connections before closing them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Shared by every handler.
#[derive(Debug)]
pub struct AppState {
    pub args: ServeArgs,
    db: Arc<OnceLock<Arc<Tsdb>>>,
    config: RwLock<Arc<Config>>,
    pub metadata: MetadataStore,
    pub label_cache: remote_write::LabelCache,
    /// Remote-write requests being decoded or ingested at once.
    write_slots: Arc<tokio::sync::Semaphore>,
    /// The PromQL engine, built from the `--query.*` flags.
    pub engine: Arc<augur_engine::Engine>,
    /// The rule manager; set once the TSDB is open.
    pub rules: Arc<OnceLock<Arc<augur_rules::Manager>>>,
    /// Delivers alerts to the configured Alertmanagers.
    pub notifier: Arc<augur_rules::Notifier>,
    /// The runtime the notifier's HTTP clients run on (its threads block on it).
    runtime: tokio::runtime::Handle,
    /// Queries evaluated at once (`--query.max-concurrency`).
    pub(crate) query_slots: Arc<tokio::sync::Semaphore>,
    pub metrics: Metrics,
    pub started: SystemTime,
    /// (last reload succeeded, when the config was last loaded successfully).
    pub last_reload: Mutex<(bool, SystemTime)>,
    /// `--web.config.file` as last loaded (authentication, headers, rate limit).
    web: RwLock<Arc<WebConfig>>,
    /// The TLS configuration new connections get, when the server speaks TLS (decided at
    /// start; a reload swaps certificates and settings).
    tls: Option<Arc<RwLock<Arc<rustls::ServerConfig>>>>,
}

impl AppState {
    /// The TSDB, or `unavailable` while recovery is still running.
    pub fn db(&self) -> Result<&Arc<Tsdb>, ApiError> {
        self.db.get().ok_or_else(|| {
            ApiError::Unavailable(
                "Augur is starting up: the TSDB is still recovering; retry shortly".into(),
            )
        })
    }

    pub fn is_ready(&self) -> bool {
        self.db.get().is_some()
    }

    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The running rule groups (none before the TSDB is open).
    pub fn rule_groups(&self) -> Vec<Arc<augur_rules::Group>> {
        self.rules.get().map(|m| m.groups()).unwrap_or_default()
    }

    /// The external URL templates and alerts see: `--web.external-url` without a trailing
    /// `/`, else `http://<host name>:<listen port>` as Prometheus computes it.
    pub fn external_url(&self) -> String {
        if let Some(u) = &self.args.external_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let port = self
            .args
            .listen_address
            .rsplit(':')
            .next()
            .unwrap_or("9090");
        format!("http://{host}:{port}")
    }

    /// Starts the rule manager over the open TSDB with the config's rule files.
    fn start_rules(&self, tsdb: Arc<Tsdb>) {
        let cfg = self.config();
        let query = crate::rules_cli::engine_query(Arc::clone(&self.engine), tsdb.clone());
        let cx = augur_rules::GroupContext {
            query,
            store: tsdb,
            notify: Some(augur_rules::notify_func(
                Arc::clone(&self.notifier),
                self.external_url(),
            )),
            external_labels: cfg.global.external_labels.clone(),
            external_url: self.external_url(),
            resend_delay_ms: self.args.resend_delay_ms,
            outage_tolerance_ms: self.args.for_outage_tolerance_ms,
            for_grace_period_ms: self.args.for_grace_period_ms,
        };
        let manager = Arc::new(augur_rules::Manager::new(
            cx,
            augur_rules::ManagerOptions {
                default_interval_ms: cfg.global.evaluation_interval.0,
                default_query_offset_ms: cfg.global.rule_query_offset.map_or(0, |d| d.0),
            },
        ));
        if let Err(e) = self.load_rules(&manager, &cfg) {
            tracing::error!(error = %e, "loading rule files failed; no rules are running");
            self.metrics.config_reload_success.set(0);
        }
        let _ = self.rules.set(manager);
    }

    /// Loads the config's rule files into `manager`; on error the running rules stay.
    fn load_rules(&self, manager: &augur_rules::Manager, cfg: &Config) -> Result<(), String> {
        let files: Vec<String> = cfg
            .rule_file_paths(&self.args.config_file)?
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        let external = (cfg.global.external_labels.clone(), self.external_url());
        manager.set_name_scheme(cfg.name_scheme());
        match manager.update_with(&files, Some(external)) {
            Ok(()) => {
                let n: usize = manager.groups().len();
                tracing::info!(files = files.len(), groups = n, "rule files loaded");
                Ok(())
            }
            Err(errs) => {
                for e in &errs {
                    tracing::error!("{e}");
                }
                Err(format!(
                    "{} error(s) in rule files, first: {}",
                    errs.len(),
                    errs[0]
                ))
            }
        }
    }

    /// Builds the notifier's Alertmanager endpoints from `cfg`, without installing them.
    fn notifier_config(&self, cfg: &Config) -> Result<NotifierConfig, String> {
        let (relabel, sets) = crate::alertmanager::endpoints(cfg, &self.runtime)?;
        Ok((cfg.global.external_labels.clone(), relabel, sets))
    }

    /// Re-reads the config file and the rule files. On error the running config, rules and
    /// Alertmanagers stay and the error is returned.
    pub fn reload(&self) -> Result<(), String> {
        // The web configuration is checked first: a bad one keeps everything as it runs.
        let result = load_web_config(&self.args).and_then(|web| {
            if web.tls.is_some() != self.tls.is_some() {
                return Err(
                    "tls_server_config: turning TLS on or off needs a restart; the running server keeps its setting"
                        .to_string(),
                );
            }
            let cfg = Config::load(&self.args.config_file).map_err(|e| e.to_string())?;
            Ok((self.notifier_config(&cfg)?, cfg, web))
        });
        let result = match (result, self.rules.get()) {
            (Ok((am, cfg, web)), Some(m)) => self.load_rules(m, &cfg).map(|()| (am, cfg, web)),
            (r, _) => r,
        };
        let result = result.map(|((labels, relabel, sets), cfg, web)| {
            self.notifier.apply(labels, relabel, sets);
            if let (Some(running), Some(new)) = (&self.tls, &web.tls) {
                *running.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(new);
            }
            *self.web.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
            cfg
        });
        let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(cfg) => {
                for s in cfg.ignored_sections() {
                    tracing::warn!(
                        section = s,
                        "config section is ignored: Augur does not scrape or forward data"
                    );
                }
                if let Some(db) = self.db.get() {
                    db.set_out_of_order_window(cfg.out_of_order_window());
                }
                *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
                *last = (true, SystemTime::now());
                self.metrics.config_reload_success.set(1);
                self.metrics.config_reload_timestamp.set(unix_secs(last.1));
                tracing::info!(file = %self.args.config_file.display(), "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                last.0 = false;
                self.metrics.config_reload_success.set(0);
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
                Err(e.to_string())
            }
        }
    }
}

/// What [`augur_rules::Notifier::apply`] takes: external labels, global alert relabelling,
/// Alertmanager sets.
type NotifierConfig = (
    std::collections::BTreeMap<String, String>,
    Vec<augur_rules::relabel::Relabel>,
    Vec<augur_rules::AlertmanagerSet>,
);

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Arc<Notify>,
    serve: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Becomes `Some(Ok)` once the TSDB is open, `Some(Err)` if opening failed.
    opened: watch::Receiver<Option<Result<(), String>>>,
}

impl Server {
    /// Loads the config, binds, starts serving and starts opening the TSDB.
    pub async fn start(args: ServeArgs) -> anyhow::Result<Server> {
        let config = Config::load(&args.config_file)?;
        let web = load_web_config(&args).map_err(|e| anyhow::anyhow!(e))?;
        crate::alertmanager::install_crypto_provider();
        for flag in args.ignored.given() {
            tracing::warn!(
                flag,
                "Prometheus flag accepted but ignored: Augur has no such setting"
            );
        }
        for s in config.ignored_sections() {
            tracing::warn!(
                section = s,
                "config section is ignored: Augur does not scrape or forward data"
            );
        }
        let listener = tokio::net::TcpListener::bind(&args.listen_address)
            .await
            .with_context(|| format!("cannot listen on {} (is another server using it? choose another with --web.listen-address)", args.listen_address))?;
        let addr = listener.local_addr()?;
        let db = Arc::new(OnceLock::new());
        let rules = Arc::new(OnceLock::new());
        let notifier = Arc::new(augur_rules::Notifier::new(augur_rules::NotifierOptions {
            queue_capacity: usize::try_from(args.notification_queue_capacity).unwrap_or(usize::MAX),
            drain_on_shutdown: args.drain_notification_queue,
            ..Default::default()
        }));
        let metrics = Metrics::new(
            TsdbCollector {
                db: Arc::clone(&db),
            },
            RulesCollector {
                rules: Arc::clone(&rules),
            },
            NotifierCollector {
                notifier: Arc::clone(&notifier),
            },
        );
        metrics.config_reload_success.set(1);
        metrics
            .config_reload_timestamp
            .set(unix_secs(SystemTime::now()));
        let engine = Arc::new(augur_engine::Engine::new(augur_engine::EngineOptions {
            lookback_delta_ms: args.lookback_delta_ms,
            max_samples: usize::try_from(args.query_max_samples).unwrap_or(usize::MAX),
            timeout: std::time::Duration::from_millis(args.query_timeout_ms.max(0) as u64),
            default_subquery_step_ms: config.global.evaluation_interval.0,
        }));
        let query_slots = Arc::new(tokio::sync::Semaphore::new(
            args.query_max_concurrency as usize,
        ));
        metrics
            .engine_queries_concurrent_max
            .set(i64::from(args.query_max_concurrency));
        let state = Arc::new(AppState {
            notifier,
            runtime: tokio::runtime::Handle::current(),
            engine,
            rules,
            query_slots,
            args,
            db,
            config: RwLock::new(Arc::new(config)),
            metadata: MetadataStore::default(),
            label_cache: remote_write::LabelCache::default(),
            write_slots: Arc::new(tokio::sync::Semaphore::new(WRITE_SLOTS)),
            metrics,
            started: SystemTime::now(),
            last_reload: Mutex::new((true, SystemTime::now())),
            tls: web
                .tls
                .as_ref()
                .map(|c| Arc::new(RwLock::new(Arc::clone(c)))),
            web: RwLock::new(Arc::new(web)),
        });

        let (labels, relabel, sets) = state.notifier_config(&state.config()).map_err(|e| {
            anyhow::anyhow!(
                "invalid alerting configuration in {}: {e}",
                state.args.config_file.display()
            )
        })?;
        state.notifier.apply(labels, relabel, sets);

        let (tx, opened) = watch::channel(None);
        let st = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            let opts = TsdbOptions {
                retention: std::time::Duration::from_millis(st.args.retention_ms.max(0) as u64),
                out_of_order_window: st.config().out_of_order_window(),
                ..TsdbOptions::default()
            };
            let path = st.args.tsdb_path.clone();
            tracing::info!(path = %path.display(), "opening the TSDB");
            let result = match Tsdb::open(&path, opts) {
                Ok(tsdb) => {
                    let rec = tsdb.recovery_stats().clone();
                    let tsdb = Arc::new(tsdb);
                    let _ = st.db.set(Arc::clone(&tsdb));
                    st.start_rules(tsdb);
                    tracing::info!(
                        series = rec.series,
                        wal_records = rec.wal_records,
                        "TSDB ready; server is ready"
                    );
                    Ok(())
                }
                Err(e) => Err(format!("cannot open the TSDB at {}: {e}", path.display())),
            };
            let _ = tx.send(Some(result));
        });

        let stop = Arc::new(Notify::new());
        let app = router(Arc::clone(&state));
        let stop2 = Arc::clone(&stop);
        let tls = state.tls.clone();
        let serve = tokio::spawn(async move {
            match tls {
                Some(cfg) => {
                    axum::serve(crate::tls::TlsListener::new(listener, cfg), app)
                        .with_graceful_shutdown(async move { stop2.notified().await })
                        .await
                }
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop2.notified().await })
                        .await
                }
            }
        });
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            state,
            stop,
            serve,
            opened,
        })
    }

    /// Waits until the TSDB is open (or failed to open).
    pub async fn wait_ready(&mut self) -> Result<(), String> {
        loop {
            if let Some(r) = self.opened.borrow().clone() {
                return r;
            }
            if self.opened.changed().await.is_err() {
                return Err("the TSDB opener stopped without a result".into());
            }
        }
    }

    /// Stops accepting, finishes in-flight requests, then checkpoints and closes the TSDB.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.notify_one();
        // A recovery still running is left to finish or die with the process: everything it
        // writes is idempotent, and the next start recovers again.
        let mut serve = self.serve;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut serve).await {
            Ok(r) => r.context("server task")??,
            Err(_) => {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
                serve.abort();
            }
        }
        // Rules stop first so that nothing more is queued, then the queues drain.
        if let Some(m) = self.state.rules.get().cloned() {
            tokio::task::spawn_blocking(move || m.stop())
                .await
                .context("stopping rules")?;
        }
        let notifier = Arc::clone(&self.state.notifier);
        tokio::task::spawn_blocking(move || notifier.stop())
            .await
            .context("stopping the notifier")?;
        if let Some(db) = self.state.db.get().cloned() {
            tokio::task::spawn_blocking(move || db.checkpoint())
                .await
                .context("checkpoint task")??;
        }
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route("/api/v1/series", get(api_v1::series).post(api_v1::series))
        .route("/api/v1/labels", get(api_v1::labels).post(api_v1::labels))
        .route("/api/v1/label/{name}/values", get(api_v1::label_values))
        .route("/api/v1/metadata", get(api_v1::metadata))
        .route("/api/v1/status/buildinfo", get(api_v1::buildinfo))
        .route("/api/v1/status/config", get(api_v1::status_config))
        .route("/api/v1/status/flags", get(api_v1::flags))
        .route("/api/v1/status/runtimeinfo", get(api_v1::runtimeinfo))
        .route("/api/v1/status/tsdb", get(api_v1::tsdb_status))
        .route("/api/v1/status/walreplay", get(api_v1::walreplay))
        .route("/api/v1/targets", get(api_v1::targets))
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(api_v1::snapshot).put(api_v1::snapshot),
        )
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(api_v1::delete_series).put(api_v1::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(api_v1::clean_tombstones).put(api_v1::clean_tombstones),
        )
        .route("/api/v1/rules", get(crate::rules_api::rules))
        .route("/api/v1/alerts", get(crate::rules_api::alerts))
        .route(
            "/api/v1/alertmanagers",
            get(crate::alertmanager::alertmanagers),
        )
        .route(
            "/api/v1/query_exemplars",
            get(api_v1::query_exemplars).post(api_v1::query_exemplars),
        )
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .merge(crate::ui::routes())
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// The web configuration, or the default (no authentication) without `--web.config.file`.
fn load_web_config(args: &ServeArgs) -> Result<WebConfig, String> {
    match &args.web_config_file {
        Some(path) => WebConfig::load(path),
        None => Ok(WebConfig::default()),
    }
}

/// Applies `--web.config.file` to every request: the rate limit, basic authentication (401
/// with `WWW-Authenticate: Basic`), and the configured response headers.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let web = Arc::clone(&st.web.read().unwrap_or_else(|e| e.into_inner()));
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let access = if web.requires_auth() && auth.is_some() {
        // A first check of a password runs bcrypt: off the async threads.
        let w = Arc::clone(&web);
        tokio::task::spawn_blocking(move || w.check(auth.as_deref()))
            .await
            .unwrap_or(Access::Unauthorized)
    } else {
        web.check(auth.as_deref())
    };
    let mut resp = match access {
        Access::Allowed => next.run(req).await,
        Access::Unauthorized => {
            let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
        Access::TooMany => plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n"),
    };
    for (name, value) in web.headers() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Records latency and status per route pattern.
async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &st.metrics;
    m.request_duration
        .get_or_create(&HandlerLabels {
            handler: handler.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            handler,
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn healthy() -> Response {
    plain(StatusCode::OK, "Augur Server is Healthy.")
}

async fn ready(State(st): State<Arc<AppState>>) -> Response {
    if st.is_ready() {
        plain(StatusCode::OK, "Augur Server is Ready.")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }
}

async fn reload(State(st): State<Arc<AppState>>) -> Response {
    let st2 = Arc::clone(&st);
    match tokio::task::spawn_blocking(move || st2.reload()).await {
        Ok(Ok(())) => plain(StatusCode::OK, ""),
        Ok(Err(e)) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}"),
        ),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload task failed: {e}"),
        ),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let st2 = Arc::clone(&st);
    let text = tokio::task::spawn_blocking(move || st2.metrics.render())
        .await
        .unwrap_or_default();
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

fn write_error(e: &WriteError) -> StatusCode {
    match e {
        WriteError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        WriteError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        WriteError::BadRequest(_) => StatusCode::BAD_REQUEST,
        WriteError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        WriteError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `POST /api/v1/write`.
async fn write(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let version = remote_write::parse_content_type(header_str(header::CONTENT_TYPE));
    let result = handle_write(&st, &headers, version.clone(), body).await;
    let label = match version {
        Ok(remote_write::Version::V2) => "v2",
        _ => "v1",
    };
    let (status, mut resp, outcome) = match result {
        Ok(out) => match out.error_message() {
            None => (
                StatusCode::NO_CONTENT,
                StatusCode::NO_CONTENT.into_response(),
                out,
            ),
            Some(msg) => (
                StatusCode::BAD_REQUEST,
                plain(StatusCode::BAD_REQUEST, msg),
                out,
            ),
        },
        Err(e) => {
            let status = write_error(&e);
            if status.is_server_error() {
                tracing::error!(error = %e, "remote write failed");
            }
            (status, plain(status, e.to_string()), Default::default())
        }
    };
    for (reason, n) in &outcome.rejected {
        st.metrics.reject(reason, *n);
    }
    st.metrics
        .remote_write_requests
        .get_or_create(&RequestLabels {
            handler: label.into(),
            code: status.as_u16().to_string(),
        })
        .inc();
    if label == "v2" {
        let h = resp.headers_mut();
        for (name, v) in [
            (
                "x-prometheus-remote-write-samples-written",
                outcome.samples_written,
            ),
            (
                "x-prometheus-remote-write-histograms-written",
                outcome.histograms_written,
            ),
            (
                "x-prometheus-remote-write-exemplars-written",
                outcome.exemplars_written,
            ),
        ] {
            h.insert(name, HeaderValue::from(v));
        }
    }
    resp
}

async fn handle_write(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    version: Result<remote_write::Version, WriteError>,
    body: Body,
) -> Result<remote_write::WriteOutcome, WriteError> {
    let version = version?;
    remote_write::check_encoding(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    )?;
    let db = st
        .db()
        .map_err(|e| WriteError::Unavailable(e.to_string()))?
        .clone();
    // Bounded concurrency: beyond it, senders get a 503 and retry with backoff, instead of
    // every retry buffering its body in memory at once.
    let _permit = tokio::time::timeout(
        WRITE_QUEUE_WAIT,
        Arc::clone(&st.write_slots).acquire_owned(),
    )
    .await
    .map_err(|_| {
        WriteError::Unavailable("too many remote-write requests in progress; retry later".into())
    })?
    .map_err(|_| WriteError::Unavailable("the server is shutting down".into()))?;
    let limit = st.args.remote_write_max_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        WriteError::TooLarge(format!("request body exceeds the {limit} bytes limit"))
    })?;
    let st = Arc::clone(st);
    tokio::task::spawn_blocking(move || {
        let req = remote_write::decode_body(&bytes, version, limit.saturating_mul(4))?;
        let names = st.config().name_scheme();
        remote_write::ingest(db.as_ref(), &st.metadata, &st.label_cache, names, &req)
    })
    .await
    .map_err(|e| WriteError::Internal(format!("write task failed: {e}")))?
}
