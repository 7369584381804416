//! HTTPS on the main listener: rustls with the ring provider, HTTP/2 or
//! HTTP/1.1 by ALPN, and a certificate that can be re-read while serving
//! (`longrun serve` does on SIGHUP).
//!
//! A reload swaps the certificate the next handshakes get: a handshake
//! already past its ClientHello finishes with the old one, and
//! established connections keep theirs until they close. A reload that
//! fails (an unreadable file, a key that does not match) changes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The certificate and key files a node serves HTTPS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM: the certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The TLS side of a listener: accepts handshakes, reloads its certificate.
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
    files: TlsFiles,
}

/// The certificate handed to new handshakes.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("the certificate lock is never poisoned").clone())
    }
}

impl Tls {
    /// Reads `files`; fails with a message naming the file at fault.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let current = Arc::new(Current(RwLock::new(Arc::new(certified_key(&files)?))));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), current, files })
    }

    /// Reads the files again; new handshakes get what they hold now.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(certified_key(&self.files)?);
        *self.current.0.write().expect("the certificate lock is never poisoned") = fresh;
        Ok(())
    }

    /// The files it serves.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads the files on every SIGHUP, for as long as the process runs.
    pub async fn reload_on_hangup(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install the SIGHUP handler: the TLS certificate is read only at start");
            return;
        };
        while hangups.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.files.cert.display(), "SIGHUP: reloaded the TLS certificate"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "SIGHUP: kept the TLS certificate in use"),
            }
        }
    }

    /// Runs the server side of a handshake on `stream`.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.acceptor.accept(stream).await
    }
}

/// Whether a finished handshake chose HTTP/2.
pub fn negotiated_http2(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

fn certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let chain = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read a private key from {}", files.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .with_context(|| format!("{} is not the key of {}", files.key.display(), files.cert.display()))
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read certificates from {}", path.display()))?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::dev_cert;

    fn served(tls: &Tls) -> CertificateDer<'static> {
        tls.current.0.read().unwrap().cert[0].clone()
    }

    #[test]
    fn a_reload_that_fails_keeps_the_certificate_in_use() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (dev_cert::load_or_create(a.path()).unwrap(), dev_cert::load_or_create(b.path()).unwrap());
        let tls = Tls::load(a.files.clone()).unwrap();
        let first = served(&tls);

        std::fs::copy(&b.files.key, &a.files.key).unwrap(); // a's certificate, b's key
        let refused = tls.reload().unwrap_err();
        assert!(format!("{refused:#}").contains("is not the key of"), "{refused:#}");
        assert_eq!(served(&tls), first);

        std::fs::copy(&b.files.cert, &a.files.cert).unwrap(); // now a matching pair
        tls.reload().unwrap();
        assert_ne!(served(&tls), first);
    }
}
