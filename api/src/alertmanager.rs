//! Alertmanager over HTTP: the wire side of the notifier (`augur_rules::notifier`).
//!
//! - [`endpoints`] turns the config's `alerting` section into notifier sets: one per
//!   `alertmanagers` entry, each `static_configs` target becoming an endpoint
//!   `scheme://address/path_prefix/api/v2/alerts` after the entry's `relabel_configs` (which
//!   see `__address__`, `__scheme__`, `__alerts_path__` and the group's labels, as in
//!   Prometheus), with one HTTP client per entry (timeout, auth, TLS, proxy, redirects).
//! - [`HttpTransport`] posts a batch as Alertmanager's v2 JSON (`PostableAlerts`: `labels`,
//!   `annotations`, `startsAt`, `endsAt`, `generatorURL`; times RFC 3339 with milliseconds, as
//!   Prometheus's `strfmt.DateTime`). Any 2xx is success.
//! - [`alertmanagers`] serves `GET /api/v1/alertmanagers`.

use std::sync::Arc;
use std::time::Duration;

use augur_rules::notifier::{AlertmanagerSet, NotifierAlert, Transport};
use augur_rules::relabel::{self, Relabel};
use axum::extract::State;
use serde_json::{json, Map, Value};

use crate::config::{compile_relabel, AlertmanagerConfig, Config, TlsConfig};
use crate::error::{ApiResponse, ApiResult};
use crate::server::AppState;

/// Credentials sent with every request of one entry.
enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// A whole `Authorization` header value (`Bearer <token>`, or `<type> <credentials>`).
    Header(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Basic { .. } => "Basic(<secret>)",
            Auth::Header(_) => "Header(<secret>)",
        })
    }
}

/// Posts batches to Alertmanager's v2 API with one entry's client settings.
pub struct HttpTransport {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    /// The entry, for its credentials: files among them are read for every request, as
    /// Prometheus does, so a rotated token is used without a reload.
    entry: Arc<AlertmanagerConfig>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Go's `strfmt.DateTime` JSON form: RFC 3339 with milliseconds, in UTC.
fn datetime(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn label_set(m: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// The request body for a batch (Alertmanager's `PostableAlerts`).
pub fn payload(alerts: &[Arc<NotifierAlert>]) -> Vec<u8> {
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "labels": label_set(&a.labels),
                "annotations": label_set(&a.annotations),
                "startsAt": datetime(a.starts_at),
                "endsAt": datetime(a.ends_at),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    serde_json::to_vec(&list).expect("JSON of strings always serialises")
}

impl Transport for HttpTransport {
    fn send(&self, url: &str, alerts: &[Arc<NotifierAlert>]) -> Result<(), String> {
        let mut req = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload(alerts));
        req = match auth(&self.entry)? {
            Auth::None => req,
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            Auth::Header(h) => req.header(reqwest::header::AUTHORIZATION, h),
        };
        let timeout = self.timeout;
        self.runtime.block_on(async move {
            let resp = req.send().await.map_err(|e| describe(&e, timeout))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            // Alertmanager explains a refusal in the body; keep the start of it.
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.trim().chars().take(300).collect();
            Err(if body.is_empty() {
                format!("bad response status {status}")
            } else {
                format!("bad response status {status}: {body}")
            })
        })
    }
}

/// A one-line reason for a failed request, with the causes reqwest nests.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within the timeout ({timeout:?}; raise `timeout` in alerting.alertmanagers if it is slow)");
    }
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Reads a secret given inline or as a file; `what` names the option in errors.
fn secret(
    inline: &Option<String>,
    file: &Option<std::path::PathBuf>,
    what: &str,
) -> Result<Option<String>, String> {
    if let Some(v) = inline {
        return Ok(Some(v.clone()));
    }
    match file {
        Some(p) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|e| format!("{what}_file: cannot read {}: {e}", p.display())),
        None => Ok(None),
    }
}

fn auth(am: &AlertmanagerConfig) -> Result<Auth, String> {
    if let Some(b) = &am.basic_auth {
        let user = match &b.username_file {
            Some(_) => secret(&None, &b.username_file, "basic_auth.username")?.unwrap_or_default(),
            None => b.username.clone(),
        };
        let password = secret(&b.password, &b.password_file, "basic_auth.password")?;
        return Ok(Auth::Basic {
            user,
            password: password.unwrap_or_default(),
        });
    }
    if let Some(a) = &am.authorization {
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
        let creds = secret(
            &a.credentials,
            &a.credentials_file,
            "authorization.credentials",
        )?;
        return Ok(Auth::Header(format!(
            "{kind} {}",
            creds.unwrap_or_default()
        )));
    }
    match secret(&am.bearer_token, &am.bearer_token_file, "bearer_token")? {
        Some(t) => Ok(Auth::Header(format!("Bearer {t}"))),
        None => Ok(Auth::None),
    }
}

/// PEM text given inline or as a file.
fn pem(
    inline: &Option<String>,
    file: &Option<std::path::PathBuf>,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    Ok(secret(inline, file, what)?.map(String::into_bytes))
}

fn tls_version(v: &str, what: &str) -> Result<reqwest::tls::Version, String> {
    match v {
        "TLS10" => Ok(reqwest::tls::Version::TLS_1_0),
        "TLS11" => Ok(reqwest::tls::Version::TLS_1_1),
        "TLS12" => Ok(reqwest::tls::Version::TLS_1_2),
        "TLS13" => Ok(reqwest::tls::Version::TLS_1_3),
        _ => Err(format!(
            "tls_config.{what}: unknown TLS version {v:?} (use TLS10, TLS11, TLS12 or TLS13)"
        )),
    }
}

fn with_tls(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(ca) = pem(&tls.ca, &tls.ca_file, "tls_config.ca")? {
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| format!("tls_config.ca: not a PEM certificate bundle: {e}"))?;
        b = b.tls_certs_only(certs);
    }
    let cert = pem(&tls.cert, &tls.cert_file, "tls_config.cert")?;
    let key = pem(&tls.key, &tls.key_file, "tls_config.key")?;
    match (cert, key) {
        (Some(mut cert), Some(key)) => {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let id = reqwest::Identity::from_pem(&cert)
                .map_err(|e| format!("tls_config: client certificate or key unusable: {e}"))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => return Err(
            "tls_config: client cert and key must be configured together (cert_file and key_file)"
                .into(),
        ),
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(v) = &tls.min_version {
        b = b.tls_version_min(tls_version(v, "min_version")?);
    }
    if let Some(v) = &tls.max_version {
        b = b.tls_version_max(tls_version(v, "max_version")?);
    }
    Ok(b)
}

fn transport(
    am: &AlertmanagerConfig,
    runtime: &tokio::runtime::Handle,
) -> Result<HttpTransport, String> {
    install_crypto_provider();
    let redirects = if am.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("Augur/", env!("CARGO_PKG_VERSION")))
        .redirect(redirects)
        .connect_timeout(am.timeout.as_std());
    if let Some(p) = &am.proxy_url {
        b = b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url {p:?}: {e}"))?);
    } else {
        b = b.no_proxy();
    }
    b = with_tls(b, &am.tls_config)?;
    let client = b
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(HttpTransport {
        client,
        runtime: runtime.clone(),
        timeout: am.timeout.as_std(),
        entry: {
            // Unreadable credentials fail the load, naming the file.
            auth(am)?;
            Arc::new(am.clone())
        },
    })
}

/// Installs ring as the process's rustls crypto provider, which every reqwest client
/// needs; call it before building one. Repeated calls (or another provider already
/// installed) are harmless.
pub fn install_crypto_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Go's `path.Join("/", prefix, "/api/v2/alerts")` for the prefixes configs use.
fn alerts_path(prefix: &str) -> String {
    let parts: Vec<&str> = prefix
        .split('/')
        .chain(["api", "v2", "alerts"])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn url_of(labels: &std::collections::BTreeMap<String, String>) -> String {
    let get = |k: &str| labels.get(k).map_or("", String::as_str);
    format!(
        "{}://{}{}",
        get("__scheme__"),
        get("__address__"),
        get("__alerts_path__")
    )
}

/// The notifier's configuration from the config file: the global `alert_relabel_configs`
/// and one set per `alertmanagers` entry. Fails on an unreadable secret or certificate file,
/// naming the entry.
pub fn endpoints(
    cfg: &Config,
    runtime: &tokio::runtime::Handle,
) -> Result<(Vec<Relabel>, Vec<AlertmanagerSet>), String> {
    let global = compile_relabel(
        &cfg.alerting.alert_relabel_configs,
        "alerting.alert_relabel_configs",
    )?;
    let mut sets = Vec::new();
    for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
        let at = format!("alerting.alertmanagers[{i}]");
        let target_relabel =
            compile_relabel(&am.relabel_configs, &format!("{at}.relabel_configs"))?;
        let alert_relabel = compile_relabel(
            &am.alert_relabel_configs,
            &format!("{at}.alert_relabel_configs"),
        )?;
        let transport = transport(am, runtime).map_err(|e| format!("{at}: {e}"))?;
        if let Some(name) = &am.tls_config.server_name {
            tracing::warn!(
                entry = %at, server_name = %name,
                "tls_config.server_name is not supported: certificates are checked against each target's host"
            );
        }
        let (mut urls, mut dropped_urls) = (Vec::new(), Vec::new());
        for sc in &am.static_configs {
            for target in &sc.targets {
                // As in Prometheus: the entry's scheme and path first, then the group's labels
                // (which may override them), the target's address last.
                let mut labels = std::collections::BTreeMap::from([
                    ("__scheme__".to_string(), am.scheme.clone()),
                    ("__alerts_path__".to_string(), alerts_path(&am.path_prefix)),
                ]);
                labels.extend(sc.labels.clone());
                labels.insert("__address__".into(), target.clone());
                let before = url_of(&labels);
                if !relabel::process(&mut labels, &target_relabel) {
                    dropped_urls.push(before);
                    continue;
                }
                let address = labels.get("__address__").map_or("", String::as_str);
                if address.is_empty() || address.contains('/') {
                    return Err(format!(
                        "{at}: {address:?} is not a valid Alertmanager address (want host:port)"
                    ));
                }
                urls.push(url_of(&labels));
            }
        }
        sets.push(AlertmanagerSet {
            // The entry's position and every setting, secrets included: a changed password is
            // a changed configuration.
            key: format!("{i}:{am:?}"),
            urls,
            dropped_urls,
            alert_relabel,
            transport: Arc::new(transport),
        });
    }
    Ok((global, sets))
}

/// `GET /api/v1/alertmanagers`: the endpoints alerts go to, and those relabelling dropped.
pub async fn alertmanagers(State(st): State<Arc<AppState>>) -> ApiResult {
    let urls = |list: Vec<String>| -> Vec<Value> {
        list.into_iter().map(|u| json!({ "url": u })).collect()
    };
    let active = st.notifier.endpoints().into_iter().map(|e| e.url).collect();
    Ok(ApiResponse::new(json!({
        "activeAlertmanagers": urls(active),
        "droppedAlertmanagers": urls(st.notifier.dropped_urls()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_times() {
        assert_eq!(alerts_path("/"), "/api/v2/alerts");
        assert_eq!(alerts_path("/am/"), "/am/api/v2/alerts");
        assert_eq!(alerts_path("prefix/x"), "/prefix/x/api/v2/alerts");
        assert_eq!(datetime(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(datetime(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn payload_has_alertmanagers_fields() {
        let a = Arc::new(NotifierAlert {
            labels: [("alertname".to_string(), "A".to_string())].into(),
            annotations: Default::default(),
            starts_at: 1000,
            ends_at: 2000,
            generator_url: "http://x/graph".into(),
        });
        let v: Value = serde_json::from_slice(&payload(&[a])).unwrap();
        assert_eq!(
            v,
            json!([{
                "labels": {"alertname": "A"},
                "annotations": {},
                "startsAt": "1970-01-01T00:00:01.000Z",
                "endsAt": "1970-01-01T00:00:02.000Z",
                "generatorURL": "http://x/graph",
            }])
        );
    }

    fn sets_of(yaml: &str) -> Result<(Vec<Relabel>, Vec<AlertmanagerSet>), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let cfg =
            Config::parse(yaml, std::path::Path::new("augur.yml")).map_err(|e| e.to_string())?;
        endpoints(&cfg, rt.handle())
    }

    #[test]
    fn targets_become_urls_after_relabelling() {
        let (_, sets) = sets_of(
            "alerting:\n  alertmanagers:\n    - path_prefix: /am\n      static_configs:\n        - targets: ['a:9093', 'b:9093']\n          labels: {dc: x}\n      relabel_configs:\n        - source_labels: [__address__]\n          regex: 'b:.*'\n          action: drop\n    - scheme: https\n      static_configs: [{targets: ['c:443']}]\n    - static_configs: [{targets: ['d:80'], labels: {__scheme__: https}}]\n",
        )
        .unwrap();
        // A static config's labels override the entry's scheme, as in Prometheus.
        assert_eq!(sets[2].urls, ["https://d:80/api/v2/alerts"]);
        assert_eq!(sets[0].urls, ["http://a:9093/am/api/v2/alerts"]);
        assert_eq!(sets[0].dropped_urls, ["http://b:9093/am/api/v2/alerts"]);
        assert_eq!(sets[1].urls, ["https://c:443/api/v2/alerts"]);
        assert_ne!(sets[0].key, sets[1].key);
    }

    #[test]
    fn credential_files_are_read_for_each_request() {
        let dir = tempfile::TempDir::new().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "one\n").unwrap();
        let cfg = Config::parse(
            &format!(
                "alerting:\n  alertmanagers:\n    - bearer_token_file: {}\n",
                token.display()
            ),
            std::path::Path::new("augur.yml"),
        )
        .unwrap();
        let entry = &cfg.alerting.alertmanagers[0];
        let header = |a: Auth| match a {
            Auth::Header(h) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(header(auth(entry).unwrap()), "Bearer one");
        std::fs::write(&token, "two\n").unwrap();
        assert_eq!(header(auth(entry).unwrap()), "Bearer two");
    }

    #[test]
    fn bad_entries_are_named() {
        let err =
            sets_of("alerting:\n  alertmanagers:\n    - bearer_token_file: /nonexistent/token\n")
                .unwrap_err();
        assert!(
            err.starts_with(
                "alerting.alertmanagers[0]: bearer_token_file: cannot read /nonexistent/token"
            ),
            "{err}"
        );
        let err =
            sets_of("alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['h/x:1']}]\n")
                .unwrap_err();
        assert!(
            err.contains("\"h/x:1\" is not a valid Alertmanager address"),
            "{err}"
        );
        let err = sets_of("alerting:\n  alertmanagers:\n    - tls_config: {cert_file: /x}\n")
            .unwrap_err();
        assert!(err.contains("cert_file: cannot read /x"), "{err}");
    }
}
