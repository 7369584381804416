//! Making keys: 256 random bits, shown once, stored as a SHA-256 hash.
//! Keys are high-entropy, so a slow password hash would buy no security and
//! would cost every request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{ApiKey, KeyScope, Role, Timestamp};
use crate::store::{Store, StoreError};

/// Every secret starts with this, so leaked keys are easy to grep for.
pub const SECRET_PREFIX: &str = "lr_";

/// Hex SHA-256 of a secret: what the store indexes.
pub fn hash_secret(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// A new key and its secret, which exists only in the return value.
pub fn generate(scope: KeyScope, role: Role, name: Option<String>, now: Timestamp) -> (ApiKey, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let key = ApiKey {
        id: format!("key_{}", Uuid::now_v7().simple()),
        hash: hash_secret(&secret),
        scope,
        role,
        name,
        created_at: now,
        revoked_at: None,
    };
    (key, secret)
}

/// Generates and stores a key; returns it with its secret.
pub async fn create(
    store: &dyn Store,
    scope: KeyScope,
    role: Role,
    name: Option<String>,
    now: Timestamp,
) -> Result<(ApiKey, String), StoreError> {
    let (key, secret) = generate(scope, role, name, now);
    store.create_key(&key).await?;
    Ok((key, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_lowercase_hex_sha256_as_stored_by_every_version() {
        // FIPS 180-2's "abc" example: keys stored by older builds must still match.
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn secrets_are_random_and_only_their_hash_is_kept() {
        let now = Timestamp::from_unix_nanos(0);
        let (a, secret_a) = generate(KeyScope::All, Role::Read, None, now);
        let (b, secret_b) = generate(KeyScope::All, Role::Read, None, now);
        assert_ne!(secret_a, secret_b);
        assert!(secret_a.starts_with(SECRET_PREFIX) && secret_a.len() == 3 + 43);
        assert_eq!(a.hash, hash_secret(&secret_a));
        assert_ne!(a.hash, b.hash);
        assert!(!a.hash.contains(&secret_a[3..]));
    }
}
