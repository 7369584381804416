//! The development issuer (`longrun token mint`, `serve --dev`): an ES256 key
//! pair made on first use in the data dir (PKCS#8 PEM, mode 0600) and
//! trusted as issuer `longrun-dev`. Never trusted unless `--dev` is given.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use sha2::{Digest, Sha256};

use super::jwt::{self, DEFAULT_SCOPE_CLAIM, IssuerConfig, KeySource};
use crate::model::{Role, Scope};

/// The `iss` of development tokens.
pub const DEV_ISSUER: &str = "longrun-dev";
/// The audience `token mint` uses by default and the native API requires of
/// development tokens.
pub const DEV_AUDIENCE: &str = "longrun";
/// The key pair's file in the data dir.
pub const KEY_FILE: &str = "dev-token-key.pem";

const PEM_LABEL: &str = "PRIVATE KEY";

/// The development key pair.
pub struct DevKey {
    pkcs8: Vec<u8>,
    /// Uncompressed P-256 point: 0x04 ‖ x ‖ y.
    public: Vec<u8>,
    path: PathBuf,
}

impl DevKey {
    /// Loads the key pair of `data_dir`, making it (and the dir) on first use.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<DevKey> {
        let path = data_dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read_to_string(&path) {
            Ok(pem) => from_pem(&pem).with_context(|| format!("{} is no PKCS#8 PEM key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path)?,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &ring::rand::SystemRandom::new())
            .map_err(|e| anyhow::anyhow!("{} is no P-256 key: {e}", path.display()))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(DevKey { pkcs8, public, path })
    }

    /// Where the key pair is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A stable id for the key: the start of its public key's SHA-256.
    pub fn kid(&self) -> String {
        Sha256::digest(&self.public)[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The public key as a JWKS.
    pub fn jwks(&self) -> JwkSet {
        let (x, y) = self.public[1..].split_at(32);
        serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid(),
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]}))
        .expect("a P-256 JWK deserializes")
    }

    /// The issuer `serve --dev` trusts: scopes in `longrun_scope`, the native
    /// API's audience `longrun`.
    pub fn issuer(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: DEV_ISSUER.into(),
            audience: DEV_AUDIENCE.into(),
            keys: KeySource::Fixed(self.jwks()),
            scope_claim: DEFAULT_SCOPE_CLAIM.into(),
            scope_prefix: String::new(),
        }
    }

    /// Signs a token reaching `scopes` with `role`, for `audience`, valid
    /// from now for `lifetime`.
    pub fn mint(
        &self,
        scopes: &[Scope],
        role: Role,
        audience: &str,
        subject: &str,
        lifetime: Duration,
    ) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let scopes: Vec<String> = scopes.iter().map(Scope::to_string).collect();
        let roles: Vec<&str> = jwt::role_claim(role).into_iter().collect();
        let claims = serde_json::json!({
            "iss": DEV_ISSUER, "sub": subject, "aud": audience,
            "iat": now, "nbf": now, "exp": now + lifetime.as_secs(),
            DEFAULT_SCOPE_CLAIM: scopes, "roles": roles,
        });
        let header = Header { kid: Some(self.kid()), ..Header::new(Algorithm::ES256) };
        Ok(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8))?)
    }
}

fn create(path: &Path) -> anyhow::Result<Vec<u8>> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("cannot generate a key pair: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(to_pem(pkcs8.as_ref()).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(pkcs8.as_ref().to_vec())
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = std::fs::read_to_string(path)?;
            from_pem(&pem).with_context(|| format!("{} is no PKCS#8 PEM key", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn to_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {PEM_LABEL}-----\n{}\n-----END {PEM_LABEL}-----\n", lines.join("\n"))
}

fn from_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    Ok(STANDARD.decode(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_pair_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevKey::load_or_create(&dir.path().join("data")).unwrap();
        let again = DevKey::load_or_create(&dir.path().join("data")).unwrap();
        assert_eq!(first.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(first.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = first
            .mint(&[Scope::parse("projects/alpha").unwrap()], Role::Produce, "longrun", "me", Duration::from_secs(60))
            .unwrap();
        assert_eq!(token.split('.').count(), 3);
    }
}
