//! TLS for the HTTP server (`tls_server_config` of `--web.config.file`), with rustls.
//!
//! - The certificate and key come from files (re-read when either file changes, checked at
//!   every handshake, as the exporter-toolkit does) or inline PEM.
//! - `client_auth_type`: `NoClientCert`, `RequestClientCert` and `RequireAnyClientCert`
//!   (a client certificate asked for or required, not verified), `VerifyClientCertIfGiven` and
//!   `RequireAndVerifyClientCert` (verified against `client_ca_file`/`client_ca`).
//! - `min_version`/`max_version`: rustls speaks TLS 1.2 and 1.3 only; a minimum below 1.2
//!   means 1.2, a maximum below 1.2 is an error.
//! - `cipher_suites` picks among rustls's TLS 1.2 suites by their Go names (TLS 1.3 suites are
//!   not configurable, as in Go); `curve_preferences` among X25519, CurveP256 and CurveP384.
//!   Any other name is an error naming it. `prefer_server_cipher_suites` is accepted (rustls
//!   always prefers the server's order). `client_allowed_sans` is not supported yet (error).
//!
//! Handshakes run on their own tasks (a slow client holds no other), with a 10 s limit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

/// Where a PEM comes from.
#[derive(Debug, Clone)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())),
            Pem::Inline(s) => Ok(s.as_bytes().to_vec()),
        }
    }

    fn modified(&self) -> Option<SystemTime> {
        match self {
            Pem::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            Pem::Inline(_) => None,
        }
    }
}

/// The TLS settings of a web config, checked.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: String,
    pub client_ca: Option<Pem>,
    pub min_version: String,
    pub max_version: String,
    pub cipher_suites: Vec<String>,
    pub curves: Vec<String>,
}

/// rustls's provider (ring), with the suites and groups `s` allows.
fn provider(s: &TlsSettings) -> Result<CryptoProvider, String> {
    use rustls::crypto::ring::{cipher_suite as cs, default_provider, kx_group};
    let mut p = default_provider();
    if !s.cipher_suites.is_empty() {
        let mut suites: Vec<rustls::SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .copied()
            .filter(|c| c.version() == &rustls::version::TLS13)
            .collect();
        for name in &s.cipher_suites {
            let suite = match name.as_str() {
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                }
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                }
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
                | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                }
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
                | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
                }
                other => {
                    return Err(format!(
                        "cipher_suites: {other:?} is not one rustls offers (ECDHE with AES-GCM or ChaCha20-Poly1305 only)"
                    ))
                }
            };
            suites.push(suite);
        }
        p.cipher_suites = suites;
    }
    if !s.curves.is_empty() {
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for name in &s.curves {
            groups.push(match name.as_str() {
                "X25519" => kx_group::X25519,
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                other => {
                    return Err(format!(
                    "curve_preferences: {other:?} is not supported (X25519, CurveP256, CurveP384)"
                ))
                }
            });
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

fn versions(s: &TlsSettings) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str, field: &str| -> Result<u8, String> {
        Ok(match v {
            "" => 0,
            "TLS10" => 10,
            "TLS11" => 11,
            "TLS12" => 12,
            "TLS13" => 13,
            other => return Err(format!("{field}: unknown TLS version: {other}")),
        })
    };
    let min = rank(&s.min_version, "min_version")?.max(12);
    let max = match rank(&s.max_version, "max_version")? {
        0 => 13,
        v if v < 12 => {
            return Err(format!(
                "max_version: {}: rustls speaks TLS 1.2 and 1.3 only",
                s.max_version
            ))
        }
        v => v,
    };
    if min > max {
        return Err("min_version is above max_version".into());
    }
    let mut out = Vec::new();
    if min <= 12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

fn certified_key(cert: &Pem, key: &Pem, p: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert.bytes()?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert: not PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err("cert: no certificate in it".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key.bytes()?)
        .map_err(|e| format!("key: not a PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, p).map_err(|e| format!("key: {e}"))
}

/// The server certificate, re-read when its files change.
#[derive(Debug)]
struct Reloading {
    cert: Pem,
    key: Pem,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = (self.cert.modified(), self.key.modified());
        if stamps != (cur.0, cur.1) {
            match certified_key(&self.cert, &self.key, &self.provider) {
                Ok(k) => *cur = (stamps.0, stamps.1, Arc::new(k)),
                // A half-written pair: keep serving the old one, try again next handshake.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but does not load; keeping the previous one")
                }
            }
        }
        Some(Arc::clone(&cur.2))
    }
}

/// Accepts any client certificate (`RequestClientCert`, `RequireAnyClientCert`): asked for,
/// not verified, as Go's `tls` does for those modes.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
}

/// The rustls server configuration for `s`; errors name the field.
pub fn server_config(s: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(provider(s)?);
    let versions = versions(s)?;
    let key = certified_key(&s.cert, &s.key, &provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("cipher_suites/min_version/max_version: {e}"))?;
    let roots = || -> Result<Arc<rustls::RootCertStore>, String> {
        let Some(ca) = &s.client_ca else {
            return Err(format!(
                "client_auth_type {} needs client_ca_file (or client_ca)",
                s.client_auth
            ));
        };
        let mut store = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&ca.bytes()?) {
            let c = c.map_err(|e| format!("client_ca_file: not PEM certificates: {e}"))?;
            store.add(c).map_err(|e| format!("client_ca_file: {e}"))?;
        }
        Ok(Arc::new(store))
    };
    let verified = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let b = WebPkiClientVerifier::builder_with_provider(roots()?, Arc::clone(&provider));
        let b = if optional {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build().map_err(|e| format!("client_ca_file: {e}"))
    };
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match s.client_auth.as_str() {
        "" | "NoClientCert" => None,
        "RequestClientCert" | "RequireAnyClientCert" => Some(Arc::new(AnyClientCert {
            mandatory: s.client_auth == "RequireAnyClientCert",
            provider: Arc::clone(&provider),
        })),
        "VerifyClientCertIfGiven" => Some(verified(true)?),
        "RequireAndVerifyClientCert" => Some(verified(false)?),
        other => return Err(format!("client_auth_type: invalid ClientAuth: {other}")),
    };
    let resolver = Arc::new(Reloading {
        cert: s.cert.clone(),
        key: s.key.clone(),
        provider,
        current: Mutex::new((s.cert.modified(), s.key.modified(), Arc::new(key))),
    });
    let mut cfg = match verifier {
        None => builder.with_no_client_auth(),
        Some(v) => builder.with_client_cert_verifier(v),
    }
    .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A path in a web config, relative to the file's directory (as the toolkit resolves it).
pub fn relative_to(file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// A listener that hands axum connections after their TLS handshake. The configuration is
/// read per connection, so a reload applies to the next one.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
}

/// How long a client may take for its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    pub fn new(
        tcp: tokio::net::TcpListener,
        config: Arc<RwLock<Arc<ServerConfig>>>,
    ) -> TlsListener {
        let local = tcp.local_addr().expect("a bound listener has an address");
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let cfg = Arc::clone(&config.read().unwrap_or_else(|e| e.into_inner()));
                let conn_tx = tx.clone();
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = conn_tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        TlsListener { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
