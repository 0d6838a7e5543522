//! The fuzz targets: each feeds bytes to one of Augur's parsers the way the server does and
//! panics where a user would see a bug (a panic, a 500, an error where the server must
//! accept). Each brings seeds (realistic inputs to mutate from), a dictionary of its syntax
//! and a length limit.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use augur_api::metadata::MetadataStore;
use augur_api::remote_write::{self, LabelCache, Version, WriteError};
use augur_engine::{Engine, EngineOptions, QueryOptions};
use augur_storage::histogram::{Histogram, Span};
use augur_storage::{Appendable, Labels, NameScheme};
use augur_testdata::TempTsdb;

/// One fuzz target.
#[derive(Debug)]
pub struct Target {
    pub name: &'static str,
    /// What it exercises, for `augur-fuzz --list`.
    pub what: &'static str,
    /// Runs one input: `true` when the input was accepted (parsed, decoded, evaluated).
    pub run: fn(&[u8]) -> bool,
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub dict: &'static [&'static str],
    pub max_len: usize,
}

/// Every target, in the order `augur-fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "promql",
        what: "PromQL text through the api's complexity gate, the rewrite layer, the parser, the lint and instant and range evaluation over a small store",
        run: promql,
        seeds: promql_seeds,
        dict: PROMQL_DICT,
        max_len: 400,
    },
    Target {
        name: "remote_write",
        what: "remote-write 1.0 and 2.0 bodies (generated requests with hostile content, raw snappy, raw protobuf) decoded and ingested into a real store",
        run: remote_write_body,
        seeds: remote_write_seeds,
        dict: &[],
        max_len: 600,
    },
    Target {
        name: "rule_file",
        what: "rule files (YAML, groups, rules, their PromQL and templates) as `augur rules check` and the rule loader read them",
        run: rule_file,
        seeds: rule_file_seeds,
        dict: RULE_DICT,
        max_len: 2048,
    },
    Target {
        name: "template",
        what: "alert templates (Go text/template with Prometheus's functions): parsed, then executed with alert data",
        run: template,
        seeds: template_seeds,
        dict: TEMPLATE_DICT,
        max_len: 512,
    },
    Target {
        name: "exposition",
        what: "lines of the Prometheus text and OpenMetrics formats as the backtest importer splits them",
        run: exposition,
        seeds: exposition_seeds,
        dict: EXPOSITION_DICT,
        max_len: 512,
    },
    Target {
        name: "web_config",
        what: "the exporter-toolkit web configuration (--web.config.file), TLS settings included",
        run: web_config,
        seeds: web_config_seeds,
        dict: WEB_CONFIG_DICT,
        max_len: 1024,
    },
    Target {
        name: "regex",
        what: "matcher regexes translated from Go's RE2 syntax, compiled and matched",
        run: regex,
        seeds: regex_seeds,
        dict: REGEX_DICT,
        max_len: 128,
    },
    Target {
        name: "http",
        what: "requests to every endpoint of a real server (in process, on a real store): fuzzed methods, parameters, headers and bodies must never get a 500",
        run: crate::http::run,
        seeds: crate::http::seeds,
        dict: crate::http::DICT,
        max_len: 400,
    },
    Target {
        name: "params",
        what: "HTTP API parameters: times, durations and match[] selectors",
        run: params,
        seeds: params_seeds,
        dict: PARAMS_DICT,
        max_len: 256,
    },
];

/// Finds a target by name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

fn lines(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

// --- PromQL ------------------------------------------------------------------------------

const MIN: i64 = 60_000;
/// The fixture's samples span `T0 .. T0 + 2h`, one every 15 s.
const T0: i64 = 1_700_000_000_000;

struct PromFixture {
    db: TempTsdb,
    engine: Engine,
}

fn prom_fixture() -> &'static PromFixture {
    static F: OnceLock<PromFixture> = OnceLock::new();
    F.get_or_init(|| {
        let db = TempTsdb::new().expect("a temporary store for the PromQL target");
        let mut app = db.appender();
        let l = |pairs: &[(&str, &str)]| Labels::new(pairs.iter().copied()).unwrap();
        let series = [
            l(&[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ]),
            l(&[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "500"),
            ]),
            l(&[
                ("__name__", "http_requests_total"),
                ("job", "db"),
                ("code", "200"),
            ]),
            l(&[("__name__", "node_memory_bytes"), ("instance", "a:9100")]),
            l(&[("__name__", "up"), ("job", "api"), ("instance", "a:9100")]),
            l(&[
                ("__name__", "service.latency"),
                ("service.name", "checkout"),
            ]),
        ];
        for k in 0..480i64 {
            let t = T0 + k * 15_000;
            for (i, s) in series.iter().enumerate() {
                let v = match i {
                    0..=2 => (k * (i as i64 + 1)) as f64 + if k > 300 { 50.0 } else { 0.0 },
                    3 => 1e9 + ((k * 7919) % 1000) as f64,
                    4 => f64::from(u8::from(k % 97 != 0)),
                    _ => (k % 13) as f64 / 10.0,
                };
                app.append(s, t, v).unwrap();
            }
            for (j, le) in ["0.1", "0.5", "1", "+Inf"].iter().enumerate() {
                let b = l(&[("__name__", "rpc_seconds_bucket"), ("le", le)]);
                app.append(&b, t, (k * (j as i64 + 1)) as f64).unwrap();
            }
            let h = Histogram {
                schema: 1,
                count: (6 * k) as f64,
                sum: k as f64,
                zero_count: k as f64,
                zero_threshold: 1e-128,
                positive_spans: vec![Span {
                    offset: 0,
                    length: 2,
                }],
                positive_buckets: vec![(2 * k) as f64, (3 * k) as f64],
                integer: true,
                ..Histogram::default()
            };
            let n = l(&[("__name__", "native_seconds"), ("job", "api")]);
            app.append_histogram(0, &n, t, &h, 0).unwrap();
        }
        let r = app.commit().unwrap();
        assert!(r.rejected.is_empty(), "fixture: {r:?}");
        PromFixture {
            db,
            engine: Engine::new(EngineOptions {
                max_samples: 200_000,
                timeout: Duration::from_secs(2),
                ..EngineOptions::default()
            }),
        }
    })
}

/// A query error the server would answer with a 500 is a bug.
fn no_internal(r: &augur_engine::Result<augur_engine::QueryResult>, q: &str) -> bool {
    match r {
        Ok(_) => true,
        Err(augur_engine::Error::Storage(e)) => {
            panic!("query {q:?} failed in storage (a 500): {e}")
        }
        Err(_) => false,
    }
}

fn promql(input: &[u8]) -> bool {
    let q = text(input);
    if augur_api::params::check_complexity(&q).is_err() {
        return false;
    }
    if let Ok(expr) = augur_engine::parse(&q, 0, 0) {
        let _ = augur_engine::lint(&expr);
    }
    let f = prom_fixture();
    let opts = QueryOptions::default();
    let instant = f.engine.instant(&f.db, &q, T0 + 90 * MIN, &opts);
    let ok = no_internal(&instant, &q);
    if ok {
        let range = f
            .engine
            .range(&f.db, &q, T0, T0 + 120 * MIN, 5 * MIN, &opts);
        no_internal(&range, &q);
    }
    ok
}

fn promql_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "up",
        "sum by (job) (rate(http_requests_total[5m]))",
        "http_requests_total{code=~\"5..\"} / ignoring(code) group_left sum without(code) (http_requests_total)",
        "histogram_quantile(0.9, sum by (le) (rate(rpc_seconds_bucket[10m])))",
        "histogram_quantile(0.5, rate(native_seconds[5m]))",
        "histogram_fraction(0, 1, native_seconds) * histogram_count(native_seconds)",
        "topk(2, node_memory_bytes offset 10m)",
        "avg_over_time(up[1h:5m] @ end())",
        "count_values(\"v\", up)",
        "label_replace(up, \"x\", \"$1\", \"instance\", \"(.*):.*\")",
        "{\"service.latency\", \"service.name\"=\"checkout\"}",
        "zscore(node_memory_bytes[30m])",
        "ewma(node_memory_bytes[30m], 0.3)",
        "ewma_deviation(node_memory_bytes[30m], 0.3)",
        "seasonal_baseline(node_memory_bytes[1h], 10m)",
        "predict(node_memory_bytes[30m], 600)",
        "anomaly_score(node_memory_bytes[1h])",
        "severity(node_memory_bytes[30m])",
        "baseline_zscore(node_memory_bytes[1h])",
        "rate(http_requests_total[5m] anchored)",
        "increase(http_requests_total[5m] smoothed)",
        "absent(nothing{job=\"x\"})",
        "quantile_over_time(0.9, up[10m]) and on(job) up == bool 1",
        "-vector(1) ^ 2 % 3 atan2 scalar(up)",
        "limitk(1, up) or limit_ratio(0.5, up)",
        "sort_by_label(up, \"instance\")",
        "info(up)",
        "timestamp(up) - time() > -1h",
        "deriv(node_memory_bytes[10m]) unless changes(up[1h]) < 1",
        "sum(rate(http_requests_total[5m])) by (job) / on() group_right vector(2)",
    ])
}

const PROMQL_DICT: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "`",
    "=",
    "!=",
    "=~",
    "!~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    ">",
    "<",
    ">=",
    "<=",
    " and ",
    " or ",
    " unless ",
    " atan2 ",
    " bool ",
    " by ",
    " without ",
    " on",
    " ignoring",
    " group_left",
    " group_right",
    " offset ",
    " @ ",
    "start()",
    "end()",
    "[5m]",
    "[1h:1m]",
    "[5m:]",
    "[0s]",
    "[1y]",
    "[1ms:1ms]",
    "1",
    "0.5",
    "-1",
    "1e308",
    "0x1f",
    "NaN",
    "Inf",
    "-Inf",
    "1_000",
    "5m",
    "1h30m",
    "sum(",
    "avg(",
    "min(",
    "max(",
    "count(",
    "stddev(",
    "stdvar(",
    "topk(",
    "bottomk(",
    "quantile(",
    "count_values(",
    "group(",
    "limitk(",
    "limit_ratio(",
    "rate(",
    "irate(",
    "increase(",
    "delta(",
    "idelta(",
    "deriv(",
    "predict_linear(",
    "resets(",
    "changes(",
    "abs(",
    "ceil(",
    "floor(",
    "round(",
    "sqrt(",
    "exp(",
    "ln(",
    "log2(",
    "clamp(",
    "clamp_min(",
    "clamp_max(",
    "sgn(",
    "sort(",
    "sort_desc(",
    "sort_by_label(",
    "scalar(",
    "vector(",
    "time()",
    "timestamp(",
    "absent(",
    "absent_over_time(",
    "avg_over_time(",
    "sum_over_time(",
    "quantile_over_time(",
    "stddev_over_time(",
    "last_over_time(",
    "first_over_time(",
    "present_over_time(",
    "mad_over_time(",
    "double_exponential_smoothing(",
    "label_replace(",
    "label_join(",
    "histogram_quantile(",
    "histogram_quantiles(",
    "histogram_fraction(",
    "histogram_count(",
    "histogram_sum(",
    "histogram_avg(",
    "histogram_stddev(",
    "histogram_stdvar(",
    "info(",
    "zscore(",
    "ewma(",
    "ewma_deviation(",
    "seasonal_baseline(",
    "predict(",
    "anomaly_score(",
    "severity(",
    "baseline_zscore(",
    "baseline_avg(",
    "baseline_stddev(",
    " anchored",
    " smoothed",
    "up",
    "http_requests_total",
    "native_seconds",
    "rpc_seconds_bucket",
    "le",
    "job",
    "__name__",
    "\"service.name\"",
    "{\"service.latency\"}",
    "\"a{2,\"",
    "\".*\"",
    "\"\\\\\"",
    "\"\\u00e9\"",
    "\"\\xff\"",
    "#",
    "\n",
    " ",
    "::",
    ":",
    "@",
    "1e-300",
];

// --- remote write -----------------------------------------------------------------------

struct WriteFixture {
    db: TempTsdb,
    meta: MetadataStore,
    cache: LabelCache,
}

fn write_fixture() -> &'static WriteFixture {
    static F: OnceLock<WriteFixture> = OnceLock::new();
    F.get_or_init(|| WriteFixture {
        db: TempTsdb::new().expect("a temporary store for the remote-write target"),
        meta: MetadataStore::default(),
        cache: LabelCache::new(4096),
    })
}

fn remote_write_body(input: &[u8]) -> bool {
    let (_, v2, body) = crate::remote_write::body(input);
    let version = if v2 { Version::V2 } else { Version::V1 };
    let req = match remote_write::decode_body(&body, version, 32 << 20) {
        Ok(r) => r,
        Err(WriteError::BadRequest(_) | WriteError::TooLarge(_)) => return false,
        Err(e) => panic!("decoding answered {e} for a bad body; it must be a 400"),
    };
    let f = write_fixture();
    match remote_write::ingest(&f.db, &f.meta, &f.cache, NameScheme::Utf8, &req) {
        Ok(out) => out.first_error.is_none(),
        Err(e) => panic!("ingest failed on a decodable request (a 500): {e}"),
    }
}

fn remote_write_seeds() -> Vec<Vec<u8>> {
    // Choice streams: a 1.0 and a 2.0 request with a few series, samples and histograms.
    let mut seeds = Vec::new();
    for mode in [0u8, 3] {
        for k in 0..8u8 {
            let mut s = vec![mode];
            s.extend((0..120u8).map(|i| i.wrapping_mul(37).wrapping_add(k * 11)));
            seeds.push(s);
        }
    }
    seeds.push(vec![
        6, 0, 0xff, 0x06, 0, 0, b's', b'N', b'a', b'P', b'p', b'Y',
    ]);
    seeds.push(vec![7, 0, 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'a']);
    seeds
}

// --- rule files -------------------------------------------------------------------------

fn rule_file(input: &[u8]) -> bool {
    let t = text(input);
    let opts = augur_rules::ParseOptions::default();
    augur_rules::file::parse("fuzz.yml", &t, opts).is_ok()
}

fn rule_file_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n        labels:\n          team: a\n",
        "groups:\n  - name: alerts\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels:\n          severity: page\n        annotations:\n          summary: '{{ $labels.instance }} down, value {{ $value | humanize }}'\n",
        "groups:\n  - name: anomalies\n    limit: 10\n    query_offset: 1m\n    rules:\n      - alert: Unusual\n        expr: abs(zscore(rate(x[5m])[1h:1m])) > 3\n        annotations:\n          description: \"{{ range query \\\"up\\\" }}{{ .Labels.job }}{{ end }}\"\n",
        "groups: []\n",
        "groups:\n- name: a\n  rules:\n  - record: a\n    expr: 1\n- name: a\n  rules: []\n",
    ])
}

const RULE_DICT: &[&str] = &[
    "groups:",
    "- name: ",
    "rules:",
    "- record: ",
    "- alert: ",
    "expr: ",
    "for: ",
    "labels:",
    "annotations:",
    "interval: ",
    "limit: ",
    "query_offset: ",
    "keep_firing_for: ",
    "\n",
    "  ",
    "    ",
    "- ",
    ": ",
    "'",
    "\"",
    "|",
    ">",
    "&a",
    "*a",
    "!!str ",
    "!!binary ",
    "{",
    "}",
    "[",
    "]",
    "#",
    "---",
    "...",
    "~",
    "null",
    "1m",
    "-1s",
    "0",
    "{{",
    "}}",
    "$value",
    "$labels.job",
    "up == 0",
    "sum(rate(x[5m]))",
    "\t",
    "\\u0000",
    "?",
    "%",
];

// --- templates --------------------------------------------------------------------------

fn template(input: &[u8]) -> bool {
    let t = text(input);
    if augur_rules::template::check("fuzz", &t).is_err() {
        return false;
    }
    let labels: BTreeMap<String, String> = [("instance", "a:9100"), ("job", "api")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let env = augur_rules::template::Env {
        host: None,
        external_url: "http://augur.example:9090/x".into(),
        now_ms: T0,
    };
    augur_rules::template::expand("fuzz", &t, &labels, &labels, "http://x", 1234.5, &env).is_ok()
}

fn template_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "{{ $labels.instance }} is down",
        "{{ $value | humanize }} {{ $value | humanize1024 }} {{ $value | humanizeDuration }} {{ $value | humanizePercentage }}",
        "{{ printf \"%.2f %d %s %q %x %v\" $value 3 \"s\" \"q\" 255 $labels }}",
        "{{ if gt $value 100.0 }}high{{ else if eq $value 0.0 }}zero{{ else }}ok{{ end }}",
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
        "{{ with $labels.job }}{{ . | toUpper | title }}{{ end }}",
        "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ match \"a.*\" \"abc\" }}",
        "{{ define \"x\" }}X{{ end }}{{ template \"x\" }} {{ externalURL }} {{ pathPrefix }}",
        "{{ $value | humanizeTimestamp }} {{ now | toTime }} {{ \"1h\" | parseDuration }}",
        "{{- /* comment */ -}} {{ len $labels }} {{ index $labels \"job\" }} {{ and 1 0 }} {{ or 0 2 }} {{ not true }}",
        "{{ safeHtml \"<b>\" }} {{ stripPort \"a:1\" }} {{ stripDomain \"a.b.c:1\" }} {{ urlquery \"a b\" }} {{ js \"'\" }} {{ html \"<\" }}",
    ])
}

const TEMPLATE_DICT: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    "-}}",
    " ",
    "|",
    "$",
    ".",
    "$value",
    "$labels",
    "$externalLabels",
    "$externalURL",
    ".Labels",
    ".Value",
    "if ",
    "else ",
    "end",
    "range ",
    "with ",
    "define ",
    "template ",
    "block ",
    "break",
    "continue",
    ":=",
    "=",
    "(",
    ")",
    "\"",
    "`",
    "'",
    "1",
    "-1",
    "1e400",
    "0x10",
    "nil",
    "true",
    "printf ",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "title",
    "toUpper",
    "toLower",
    "reReplaceAll ",
    "match ",
    "query ",
    "first",
    "label ",
    "value",
    "sortByLabel ",
    "args ",
    "tmpl ",
    "safeHtml ",
    "stripPort ",
    "stripDomain ",
    "parseDuration",
    "now",
    "len ",
    "index ",
    "slice ",
    "eq ",
    "ne ",
    "lt ",
    "le ",
    "gt ",
    "ge ",
    "and ",
    "or ",
    "not ",
    "call ",
    "print ",
    "println ",
    "%",
    "%!",
    "%*d",
    "%[2]d",
    "%-10.3f",
    "%v",
    "%s",
    "/*",
    "*/",
];

// --- exposition -------------------------------------------------------------------------

fn exposition(input: &[u8]) -> bool {
    use augur_backtest::exposition::{parse_series, split_line, Entry, Format};
    let t = text(input);
    let mut ok = true;
    for format in [
        Format::detect(&t),
        Format::OpenMetrics,
        Format::PrometheusText,
    ] {
        for line in t.split('\n') {
            match split_line(line, format) {
                Ok(Entry::Sample { series, .. }) => ok &= parse_series(series).is_ok(),
                Ok(_) => {}
                Err(e) => {
                    // The error points into the line (1-based; one past the end for "missing").
                    let len = line.strip_suffix('\r').unwrap_or(line).len();
                    assert!(
                        e.column >= 1 && e.column <= len + 1,
                        "column {} for a line of {len} bytes: {}",
                        e.column,
                        e.message
                    );
                    ok = false;
                }
            }
        }
    }
    ok
}

fn exposition_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "# HELP up Whether up.\n# TYPE up gauge\nup{job=\"api\",instance=\"a:1\"} 1 1520430000.123\n# EOF\n",
        "http_requests_total{code=\"200\"} 1027 1395066363000\nhttp_requests_total 3 1395066363000\n",
        "metric_without_labels 12.47 1395066363000\nx{a=\"\\\"q\\\" \\\\ \\n\"} NaN 1\ny +Inf 2\nz -Inf 3\n",
        "rpc_seconds_bucket{le=\"0.1\"} 1 1.5\nrpc_seconds_bucket{le=\"+Inf\"} 2 1.5\n",
    ])
}

const EXPOSITION_DICT: &[&str] = &[
    "# HELP ",
    "# TYPE ",
    "# UNIT ",
    "# EOF",
    "\n",
    "\r\n",
    " ",
    "{",
    "}",
    "=",
    ",",
    "\"",
    "\\",
    "\\n",
    "\\\"",
    "NaN",
    "+Inf",
    "-Inf",
    "1e400",
    "-0",
    "1.5",
    "1520430000.123",
    "1395066363000",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "le",
    "_bucket",
    "_total",
    " # {a=\"b\"} 1 2",
    "counter",
    "gauge",
    "\t",
];

// --- web config -------------------------------------------------------------------------

fn web_config(input: &[u8]) -> bool {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::TempDir::new().expect("a temp dir for web configs");
    }
    DIR.with(|dir| {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, input).expect("write the web config");
        augur_api::web_config::WebConfig::load(&path).is_ok()
    })
}

fn web_config_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "basic_auth_users:\n  alice: $2y$04$ZLyiE2aZZx2wR0pPzM7/0uM6Pmi5Ge4XQoS9W8kD5Y2sPTnN7nUV6\n",
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n",
        "rate_limit:\n  interval: 1s\n  burst: 10\n",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n",
        "tls_server_config:\n  cert: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n  key: x\n",
        "",
    ])
}

const WEB_CONFIG_DICT: &[&str] = &[
    "tls_server_config:",
    "cert_file: ",
    "key_file: ",
    "cert: ",
    "key: ",
    "client_auth_type: ",
    "client_ca_file: ",
    "client_ca: ",
    "min_version: ",
    "max_version: ",
    "TLS10",
    "TLS12",
    "TLS13",
    "cipher_suites:",
    "curve_preferences:",
    "prefer_server_cipher_suites: ",
    "client_allowed_sans:",
    "http_server_config:",
    "headers:",
    "http2: ",
    "basic_auth_users:",
    "rate_limit:",
    "interval: ",
    "burst: ",
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
    "\n",
    "  ",
    "- ",
    ": ",
    "$2y$",
    "$2b$10$",
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "nosniff",
    "1s",
    "-1s",
    "0",
    "4294967296",
    "/dev/null",
    "/",
    "..",
    "~",
    "[]",
    "{}",
];

// --- regex ------------------------------------------------------------------------------

fn regex(input: &[u8]) -> bool {
    let t = text(input);
    match augur_storage::anchored_go_regex(&t) {
        Ok(re) => {
            for s in ["", "a", "aa{2,", "api", "caf\u{e9}", "\n", "a:9100"] {
                let _ = re.is_match(s);
            }
            true
        }
        Err(_) => false,
    }
}

fn regex_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "a{2,",
        "a{2,5}",
        "{x}",
        "a{,3}",
        "(?i)API|db",
        ".*foo.*",
        "[[:alpha:]]+",
        "\\Qa.b\\E",
        "(a|b)*c",
        "\\pL\\p{Greek}",
        "^x$",
        "a{1000}{1000}",
    ])
}

const REGEX_DICT: &[&str] = &[
    "{",
    "}",
    "{2,",
    "{,3}",
    "{1,2}",
    "(",
    ")",
    "(?:",
    "(?i)",
    "(?P<n>",
    "(?<n>",
    "[",
    "]",
    "[^",
    "[:alpha:]",
    "[[:^digit:]]",
    "\\",
    "\\Q",
    "\\E",
    "\\pL",
    "\\p{Greek}",
    "\\z",
    "\\A",
    "\\b",
    "\\C",
    "\\x{10FFFF}",
    "\\x{110000}",
    ".",
    "*",
    "+",
    "?",
    "*?",
    "|",
    "^",
    "$",
    "-",
];

// --- API parameters ---------------------------------------------------------------------

fn params(input: &[u8]) -> bool {
    let t = text(input);
    let a = augur_api::params::parse_time(&t).is_ok();
    let b = augur_api::params::parse_duration(&t).is_ok();
    let c = augur_api::params::parse_selector(&t).is_ok();
    a || b || c
}

fn params_seeds() -> Vec<Vec<u8>> {
    lines(&[
        "1700000000",
        "1700000000.123",
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20.5+02:00",
        "5m",
        "1h30m",
        "0.25",
        "up{job=\"api\"}",
        "{__name__=~\"http_.*\", code!=\"200\"}",
        "{\"service.name\"=\"x\"}",
    ])
}

const PARAMS_DICT: &[&str] = &[
    "1",
    "0",
    "-",
    ".",
    "e",
    "E",
    "+",
    "1e309",
    "NaN",
    "Inf",
    "T",
    "Z",
    ":",
    "+02:00",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "w",
    "y",
    "{",
    "}",
    "=",
    "=~",
    "!=",
    "!~",
    "\"",
    ",",
    "__name__",
    "-292273086-05-16T16:47:06Z",
    "292277025-08-18T07:12:54.999999999Z",
    "9223372036854775807",
];
