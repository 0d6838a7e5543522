//! `--web.config.file`: the Prometheus exporter-toolkit web configuration, same file format.
//!
//! What Augur applies: `tls_server_config` (see [`crate::tls`]), `basic_auth_users` (bcrypt
//! hashes, `$2y$…` as `htpasswd -B` writes them; every endpoint, remote write included,
//! answers 401 with `WWW-Authenticate: Basic` without valid credentials; a checked (user,
//! password) pair is cached so a busy sender does not pay bcrypt per request),
//! `http_server_config.headers` (the headers the toolkit allows, with its value checks) and
//! `rate_limit` (a token bucket: `burst` requests, one more every `interval`; 429 beyond).
//! `http_server_config.http2` is accepted. Unknown fields are errors, as the toolkit's strict
//! YAML makes them.
//!
//! `tls_server_config` turns on TLS (see [`crate::tls`] for what of it rustls honours);
//! whether TLS is on is decided at start: a reload that would turn it on or off fails.
//!
//! Unlike the toolkit, which reads the file again on every request (a broken file then
//! answers 500), Augur reads it at start and on reload (`/-/reload`, SIGHUP); a bad file on
//! reload keeps the running one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: HttpServerConfig,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

/// The toolkit's TLS section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    #[serde(default)]
    cert: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    client_ca: String,
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    max_version: String,
    #[serde(default, rename = "prefer_server_cipher_suites")]
    _prefer_server_cipher_suites: serde::de::IgnoredAny,
    #[serde(default)]
    client_allowed_sans: Vec<String>,
}

impl TlsServerConfig {
    /// The checked settings; `file` is the web config (relative paths are from its folder).
    fn settings(&self, file: &Path) -> Result<crate::tls::TlsSettings, String> {
        use crate::tls::{relative_to, Pem};
        let pick = |inline: &str, path: &str, what: &str| -> Result<Option<Pem>, String> {
            match (inline.is_empty(), path.is_empty()) {
                (false, false) => Err(format!(
                    "at most one of {what} and {what}_file must be specified"
                )),
                (false, true) => Ok(Some(Pem::Inline(inline.to_owned()))),
                (true, false) => Ok(Some(Pem::File(relative_to(file, path)))),
                (true, true) => Ok(None),
            }
        };
        let cert = pick(&self.cert, &self.cert_file, "cert")?;
        let key = pick(&self.key, &self.key_file, "key")?;
        let (Some(cert), Some(key)) = (cert, key) else {
            return Err("missing cert_file or key_file (or cert and key)".into());
        };
        if !self.client_allowed_sans.is_empty() {
            return Err("client_allowed_sans is not supported by Augur yet".into());
        }
        Ok(crate::tls::TlsSettings {
            cert,
            key,
            client_auth: self.client_auth_type.clone(),
            client_ca: pick(&self.client_ca, &self.client_ca_file, "client_ca")?,
            min_version: self.min_version.clone(),
            max_version: self.max_version.clone(),
            cipher_suites: self.cipher_suites.clone(),
            curves: self.curve_preferences.clone(),
        })
    }

    /// The toolkit's `IsEnabled`.
    fn enabled(&self) -> bool {
        [
            &self.cert_file,
            &self.cert,
            &self.key_file,
            &self.key,
            &self.client_ca_file,
            &self.client_ca,
            &self.client_auth_type,
        ]
        .iter()
        .any(|s| !s.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimit {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    burst: u32,
}

/// The headers the toolkit lets a web config set, with their allowed values (none: any).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A bcrypt hash checked for unknown users, so that timing does not tell which users exist
/// (the toolkit's, of "fakepassword").
const DECOY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// A loaded web configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// The TLS server configuration, when `tls_server_config` enables TLS.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// User → bcrypt hash; empty: no authentication.
    users: BTreeMap<String, String>,
    /// Outcome per checked (user, hash, password), keyed by a digest of the three.
    checked: Mutex<HashMap<u128, bool>>,
    /// bcrypt is CPU-heavy: one check at a time, as the toolkit does.
    bcrypt: Mutex<()>,
    limiter: Option<Mutex<Bucket>>,
}

/// A token bucket: `burst` tokens, one more every `interval`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    at: Instant,
}

/// The outcome of checking a request against the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// 401 with `WWW-Authenticate: Basic`.
    Unauthorized,
    /// 429: over the rate limit.
    TooMany,
}

/// Most (user, password) outcomes remembered; the cache starts over beyond.
const CACHE_MAX: usize = 4096;

impl WebConfig {
    /// Reads and checks `path`; errors name the file and the field.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let at = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("web config file {at}: cannot read it: {e}"))?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| format!("web config file {at}: {e}"))?
        };
        let tls = match &file.tls_server_config {
            Some(t) if t.enabled() => Some(
                t.settings(path)
                    .and_then(|s| crate::tls::server_config(&s))
                    .map_err(|e| format!("web config file {at}: tls_server_config: {e}"))?,
            ),
            _ => None,
        };
        let mut headers = Vec::new();
        for (name, value) in &file.http_server_config.headers {
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "web config file {at}: http_server_config.headers: HTTP header {name:?} can not be configured"
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(format!(
                    "web config file {at}: http_server_config.headers: invalid value for {name}. Expected one of: {allowed:?}, but got: {value:?}"
                ));
            }
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(format!(
                    "web config file {at}: http_server_config.headers: {name}: not a valid header value"
                ));
            };
            headers.push((n, v));
        }
        for (user, hash) in &file.basic_auth_users {
            if let Err(e) = hash.parse::<bcrypt::HashParts>() {
                return Err(format!(
                    "web config file {at}: basic_auth_users: user {user:?}: not a bcrypt hash ({e}); write one with `htpasswd -nBC 10 {user}`"
                ));
            }
        }
        let limiter = match &file.rate_limit {
            None => None,
            Some(r) => {
                let interval = match &r.interval {
                    Some(i) => crate::flags::duration(i)
                        .map_err(|e| format!("web config file {at}: rate_limit.interval: {e}"))?,
                    None => 0,
                };
                (interval > 0 && r.burst > 0).then(|| {
                    Mutex::new(Bucket {
                        tokens: f64::from(r.burst),
                        burst: f64::from(r.burst),
                        per_sec: 1000.0 / interval as f64,
                        at: Instant::now(),
                    })
                })
            }
        };
        let _ = file.http_server_config.http2;
        Ok(WebConfig {
            tls,
            headers,
            users: file.basic_auth_users,
            checked: Mutex::new(HashMap::new()),
            bcrypt: Mutex::new(()),
            limiter,
        })
    }

    /// Headers to add to every response.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// Whether a request with this `Authorization` header may proceed. Blocks for a bcrypt
    /// check the first time a (user, password) pair is seen: call it off the async threads.
    pub fn check(&self, authorization: Option<&[u8]>) -> Access {
        if let Some(limiter) = &self.limiter {
            let mut b = limiter.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(b.at).as_secs_f64() * b.per_sec;
            b.tokens = (b.tokens + refill).min(b.burst);
            b.at = now;
            if b.tokens < 1.0 {
                return Access::TooMany;
            }
            b.tokens -= 1.0;
        }
        if self.users.is_empty() {
            return Access::Allowed;
        }
        let Some((user, pass)) = authorization.and_then(basic_credentials) else {
            return Access::Unauthorized;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (DECOY_HASH, false),
        };
        let key = {
            let mut b = Vec::with_capacity(user.len() + hash.len() + pass.len() + 2);
            for part in [user.as_bytes(), hash.as_bytes(), pass.as_bytes()] {
                b.extend_from_slice(&(part.len() as u32).to_le_bytes());
                b.extend_from_slice(part);
            }
            xxhash_rust::xxh3::xxh3_128(&b)
        };
        let cached = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        let ok = match cached {
            Some(ok) => ok,
            None => {
                let ok = {
                    let _one = self.bcrypt.lock().unwrap_or_else(|e| e.into_inner());
                    bcrypt::verify(&pass, hash).unwrap_or(false)
                } && known;
                let mut c = self.checked.lock().unwrap_or_else(|e| e.into_inner());
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
                c.insert(key, ok);
                ok
            }
        };
        if ok {
            Access::Allowed
        } else {
            Access::Unauthorized
        }
    }

    /// Whether requests must authenticate.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

/// User and password of a `Basic` authorization header.
fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Standard base64 with padding (RFC 4648), as HTTP basic authentication uses.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * k);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        // "alice:s3cr:et" — a password may hold colons.
        assert_eq!(
            basic_credentials(b"Basic YWxpY2U6czNjcjpldA=="),
            Some(("alice".into(), "s3cr:et".into()))
        );
        assert_eq!(basic_credentials(b"Bearer x"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
    }
}
