//! `--web.config.file`: basic authentication on every endpoint (remote write included),
//! response headers, validation at start and on reload, against a real server.

mod common;

use common::{config_path, Pki, TestServer, CONFIG};
use prost::Message;
use tempfile::TempDir;

const T0: i64 = 1_700_000_000_000;

/// A server whose web config holds `web` (written before start).
async fn start_with(web: &str) -> TestServer {
    let dir = TempDir::new().unwrap();
    std::fs::write(config_path(dir.path()), CONFIG).unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, web).unwrap();
    let flag = format!("--web.config.file={}", path.display());
    TestServer::start_in(dir, &[flag.as_str()]).await
}

fn web_yml(user: &str, password: &str) -> String {
    // Cost 4: the lowest bcrypt takes, to keep the test fast.
    let hash = bcrypt::hash(password, 4).unwrap();
    format!(
        "basic_auth_users:\n  {user}: {hash}\nhttp_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_guards_every_endpoint_and_headers_are_added() {
    let srv = start_with(&web_yml("alice", "s3cret")).await;
    let get = |path: &'static str, auth: Option<(&'static str, &'static str)>| {
        let srv = &srv;
        async move {
            let mut req = srv.client.get(srv.url(path));
            if let Some((u, p)) = auth {
                req = req.basic_auth(u, Some(p));
            }
            req.send().await.unwrap()
        }
    };
    for path in [
        "/api/v1/query?query=1",
        "/metrics",
        "/-/healthy",
        "/api/v1/labels",
    ] {
        let r = get(path, None).await;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Basic", "{path}");
        assert_eq!(r.headers()["x-frame-options"], "deny", "{path}");
        assert_eq!(get(path, Some(("alice", "wrong"))).await.status(), 401);
        assert_eq!(get(path, Some(("bob", "s3cret"))).await.status(), 401);
        let ok = get(path, Some(("alice", "s3cret"))).await;
        assert_eq!(ok.status(), 200, "{path}");
        assert_eq!(
            ok.headers()["strict-transport-security"],
            "max-age=31536000"
        );
    }
    // Remote write too: refused without credentials, stored with them.
    let req = common::request(vec![common::series(
        &[("__name__", "auth_probe")],
        &[(T0, 1.0)],
    )]);
    let body = common::snappy(&req.encode_to_vec());
    let send = |auth: bool| {
        let srv = &srv;
        let body = body.clone();
        async move {
            let mut req = srv.client.post(srv.url("/api/v1/write")).body(body);
            for (k, v) in common::V1_HEADERS {
                req = req.header(*k, *v);
            }
            if auth {
                req = req.basic_auth("alice", Some("s3cret"));
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(send(false).await, 401);
    assert_eq!(send(true).await, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_file_on_reload_keeps_the_running_one() {
    let srv = start_with(&web_yml("alice", "s3cret")).await;
    let path = srv.dir.path().join("web.yml");
    std::fs::write(&path, "basic_auth_users:\n  alice: not-a-hash\n").unwrap();
    let (status, text) = reload_as(&srv, "alice", "s3cret").await;
    assert_eq!(status, 500);
    assert!(
        text.contains("basic_auth_users") && text.contains("alice"),
        "{text}"
    );
    // The old credentials still work; a new good file takes effect on the next reload.
    std::fs::write(&path, web_yml("bob", "other")).unwrap();
    assert_eq!(reload_as(&srv, "alice", "s3cret").await.0, 200);
    let status = |u: &'static str, p: &'static str| {
        let srv = &srv;
        async move {
            srv.client
                .get(srv.url("/-/ready"))
                .basic_auth(u, Some(p))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("alice", "s3cret").await, 401);
    assert_eq!(status("bob", "other").await, 200);
}

/// `POST /-/reload` as `user`: status and body.
async fn reload_as(srv: &TestServer, user: &str, password: &str) -> (u16, String) {
    let r = srv
        .client
        .post(srv.url("/-/reload"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn bad_files_stop_start_up_naming_file_and_field() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("web.yml");
    for (text, want) in [
        (
            "basic_auth_users:\n  alice: plain\n",
            "basic_auth_users: user \"alice\"",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "invalid value for X-Frame-Options",
        ),
        (
            "http_server_config:\n  headers:\n    Server: x\n",
            "HTTP header \"Server\" can not be configured",
        ),
        (
            "basic_auth_user:\n  a: b\n",
            "unknown field `basic_auth_user`",
        ),
        (
            "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n",
            "tls_server_config: ",
        ),
        (
            "tls_server_config:\n  cert_file: a.pem\n",
            "tls_server_config: missing cert_file or key_file",
        ),
        (
            "rate_limit:\n  interval: soon\n  burst: 1\n",
            "rate_limit.interval",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = augur_api::web_config::WebConfig::load(&path).unwrap_err();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(want), "{text}: {err}");
    }
    std::fs::write(&path, "").unwrap();
    assert!(augur_api::web_config::WebConfig::load(&path).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_answers_429() {
    let srv = start_with("rate_limit:\n  interval: 1h\n  burst: 2\n").await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            srv.client
                .get(srv.url("/-/healthy"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 429]);
}

/// An HTTPS client trusting `ca` only, with a client certificate if given.
fn https_client(ca: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    augur_api::alertmanager::install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_https_and_picks_up_new_certificates() {
    let (one, two) = (Pki::new("one"), Pki::new("two"));
    let dir = TempDir::new().unwrap();
    std::fs::write(config_path(dir.path()), CONFIG).unwrap();
    let (cert, key) = one.issue(&["localhost"]);
    std::fs::write(dir.path().join("server.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    let web = dir.path().join("web.yml");
    // Relative paths are from the web config's folder, as in the toolkit.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n",
    )
    .unwrap();
    let flag = format!("--web.config.file={}", web.display());
    let srv = TestServer::start_in(dir, &[flag.as_str()]).await;
    let port = srv.server.as_ref().unwrap().addr.port();
    let url = format!("https://localhost:{port}/-/healthy");
    let trusting_one = https_client(&one.ca_pem(), None);
    let r = trusting_one.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Clear-text HTTP gets no answer.
    assert!(srv.client.get(srv.url("/-/healthy")).send().await.is_err());
    // New files, from another CA: the next handshake uses them.
    let (cert, key) = two.issue(&["localhost"]);
    std::fs::write(srv.dir.path().join("server.pem"), &cert).unwrap();
    std::fs::write(srv.dir.path().join("server.key"), &key).unwrap();
    let trusting_two = https_client(&two.ca_pem(), None);
    let r = trusting_two.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(https_client(&one.ca_pem(), None)
        .get(&url)
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_certificates_are_verified() {
    let pki = Pki::new("mtls");
    let other = Pki::new("other");
    let dir = TempDir::new().unwrap();
    std::fs::write(config_path(dir.path()), CONFIG).unwrap();
    let (cert, key) = pki.issue(&["localhost"]);
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    let web = dir.path().join("web.yml");
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert: |\n{}  key: |\n{}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
            indent(&cert),
            indent(&key)
        ),
    )
    .unwrap();
    let flag = format!("--web.config.file={}", web.display());
    let srv = TestServer::start_in(dir, &[flag.as_str()]).await;
    let port = srv.server.as_ref().unwrap().addr.port();
    let url = format!("https://localhost:{port}/-/healthy");
    let ca = pki.ca_pem();
    assert!(https_client(&ca, None).get(&url).send().await.is_err());
    let (ccert, ckey) = other.issue(&["client"]);
    assert!(https_client(&ca, Some((&ccert, &ckey)))
        .get(&url)
        .send()
        .await
        .is_err());
    let (ccert, ckey) = pki.issue(&["client"]);
    let r = https_client(&ca, Some((&ccert, &ckey)))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
