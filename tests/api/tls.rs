//! HTTPS on the main listener, through the real binary: the development
//! certificate (`longrun dev-cert`, `serve --tls`) trusted by its CA, HTTP/2
//! and HTTP/1.1 by ALPN, a certificate replaced on disk served after SIGHUP
//! while open connections keep theirs, a stalled handshake cut off, and no
//! development certificate on a public address.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ServeProcess, run_longrun};

/// `longrun dev-cert --data-dir NAME` in `dir`.
fn dev_cert(dir: &Path, name: &str) {
    let made = run_longrun(dir, &["dev-cert", "--data-dir", name]);
    assert!(made.status.success(), "{made:?}");
}

fn pem(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[tokio::test]
async fn https_with_the_development_certificate_speaks_http2_and_http11_to_clients_that_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    dev_cert(dir.path(), "data");
    let server = ServeProcess::start(dir.path(), &["--tls", "--data-dir", "data"]);
    assert!(server.address.starts_with("https://127.0.0.1:"), "{}", server.address);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("data/tls/dev-ca.pem")).unwrap()).unwrap();

    let trusting = reqwest::Client::builder().add_root_certificate(ca.clone()).build().unwrap();
    let answer = trusting.get(format!("{}/healthz", server.address)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), reqwest::Version::HTTP_2, "ALPN offers h2 first");
    let http1 = reqwest::Client::builder().add_root_certificate(ca).http1_only().build().unwrap();
    let answer = http1.get(format!("{}/healthz", server.address)).send().await.unwrap();
    assert_eq!((answer.status(), answer.version()), (StatusCode::OK, reqwest::Version::HTTP_11));

    let stranger = reqwest::Client::new().get(format!("{}/healthz", server.address)).send().await;
    assert!(stranger.is_err(), "a client that does not trust the CA refuses the certificate");
    let localhost = server.address.replace("127.0.0.1", "localhost");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("data/tls/dev-ca.pem")).unwrap()).unwrap();
    let by_name = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    assert_eq!(by_name.get(format!("{localhost}/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

/// A TLS client trusting `cas`, speaking HTTP/1.1.
fn client_trusting(cas: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Connection = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A new connection and the certificate the server presented on it.
async fn connect(tls: &tokio_rustls::TlsConnector, address: &str) -> (Connection, CertificateDer<'static>) {
    let tcp = tokio::net::TcpStream::connect(address.trim_start_matches("https://")).await.unwrap();
    let stream = tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    (stream, presented)
}

/// One keep-alive request on `stream`; its status line.
async fn health(stream: &mut Connection) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("{\"status\":\"ok\"}") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_after_sighup_while_open_connections_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    dev_cert(dir.path(), "a");
    dev_cert(dir.path(), "b");
    let served = dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let install = |from: &str| {
        for (file, to) in [("localhost.pem", "cert.pem"), ("localhost-key.pem", "key.pem")] {
            std::fs::copy(dir.path().join(from).join("tls").join(file), served.join(to)).unwrap();
        }
    };
    install("a");
    let args = ["--data-dir", "data", "--tls-cert", "served/cert.pem", "--tls-key", "served/key.pem"];
    let server = ServeProcess::start(dir.path(), &args);
    let cas = [pem(&dir.path().join("a/tls/dev-ca.pem")), pem(&dir.path().join("b/tls/dev-ca.pem"))];
    let tls = client_trusting(&cas);
    let (first, second) = (pem(&dir.path().join("a/tls/localhost.pem")), pem(&dir.path().join("b/tls/localhost.pem")));

    let (mut open, presented) = connect(&tls, &server.address).await;
    assert_eq!(presented, first);
    assert_eq!(health(&mut open).await, "HTTP/1.1 200 OK");

    install("b");
    let hangup = std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status();
    assert!(hangup.unwrap().success());
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut fresh, presented) = connect(&tls, &server.address).await;
        if presented == second {
            assert_eq!(health(&mut fresh).await, "HTTP/1.1 200 OK");
            break;
        }
        assert!(Instant::now() < give_up, "still the first certificate 10 s after SIGHUP");
        tokio::task::yield_now().await;
    }
    assert_eq!(health(&mut open).await, "HTTP/1.1 200 OK", "the connection opened before the reload still serves");
}

#[tokio::test]
async fn a_client_that_opens_tls_and_stalls_is_cut_off_like_a_slow_head() {
    let dir = tempfile::tempdir().unwrap();
    dev_cert(dir.path(), "data");
    let server = ServeProcess::start(dir.path(), &["--tls", "--data-dir", "data"]);
    let mut stalled = tokio::net::TcpStream::connect(server.address.trim_start_matches("https://")).await.unwrap();
    // The first bytes of a ClientHello, and then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), stalled.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed, not left open: {read:?}");
    assert!(started.elapsed() >= Duration::from_secs(5), "not before the head timeout: {:?}", started.elapsed());
}

#[test]
fn the_development_certificate_is_refused_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run_longrun(dir.path(), &["serve", "--tls", "--listen", "0.0.0.0:0", "--data-dir", "data"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("development certificate") && said.contains("0.0.0.0:0"), "{said}");
    assert!(!dir.path().join("data/tls").exists(), "never made for a public address");
}
