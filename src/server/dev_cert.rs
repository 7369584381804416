//! The development certificate: a local CA and a certificate it signed for
//! `localhost`, `127.0.0.1` and `::1`, kept in the data dir, so clients
//! that refuse plain `http://` (the Azure SDKs' bearer-token policies) can
//! reach a local longrun by trusting one CA file. Made once, then reused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use super::tls::TlsFiles;

/// The names the certificate is for: loopback only.
pub const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How long both stay valid.
const VALID_DAYS: i64 = 825;

/// Where the development CA and certificate live in a data dir.
#[derive(Debug, Clone)]
pub struct DevCert {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The certificate and key the server uses.
    pub files: TlsFiles,
    /// Whether this call made them.
    pub created: bool,
}

/// The development certificate of `data_dir`, made if it is missing.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<DevCert> {
    let dir = data_dir.join("tls");
    let ca = dir.join("dev-ca.pem");
    let files = TlsFiles { cert: dir.join("localhost.pem"), key: dir.join("localhost-key.pem") };
    if ca.exists() && files.cert.exists() && files.key.exists() {
        return Ok(DevCert { ca, files, created: false });
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let made = make().context("cannot make the development certificate")?;
    write_file(&dir.join("dev-ca-key.pem"), &made.ca_key, 0o600)?;
    write_file(&ca, &made.ca, 0o644)?;
    write_file(&files.key, &made.key, 0o600)?;
    write_file(&files.cert, &made.cert, 0o644)?;
    Ok(DevCert { ca, files, created: true })
}

/// PEM texts of a new CA and of a loopback certificate it signed.
struct Made {
    ca: String,
    ca_key: String,
    cert: String,
    key: String,
}

fn make() -> Result<Made, rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(VALID_DAYS);
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "longrun development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (now, until);
    let ca = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(NAMES.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    (leaf.not_before, leaf.not_after) = (now, until);
    let cert = leaf.signed_by(&key, &ca, &ca_key)?;
    Ok(Made { ca: ca.pem(), ca_key: ca_key.serialize_pem(), cert: cert.pem(), key: key.serialize_pem() })
}

/// Writes `text` to `path`, replacing it; a file it creates gets `mode`
/// (0600 for secrets: the owner's alone).
pub fn write_file(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_a_loopback_certificate_once_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(first.created);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&first.files.key), 0o600);
        assert_eq!(mode(&dir.path().join("tls/dev-ca-key.pem")), 0o600);
        super::super::tls::Tls::load(first.files.clone()).expect("the server can use it");
        let again = load_or_create(dir.path()).unwrap();
        assert!(!again.created, "reused, not made again");
        assert_eq!(std::fs::read(&again.files.cert).unwrap(), std::fs::read(&first.files.cert).unwrap());
    }
}
