//! Who is calling (SPEC §4): API keys and bearer JWTs. Dialects pick where
//! the credential travels (`Ocp-Apim-Subscription-Key` or `Authorization:
//! Bearer`); this module turns it into a `Principal` or an `Unauthenticated`
//! error.

pub mod dev;
pub mod jwt;
pub mod keys;
pub mod usage;

use axum::http::{HeaderMap, HeaderValue};

use crate::http::error::CoreError;
use crate::model::{KeyScope, Role, Scope, ScopeRefusal, Timestamp};
use crate::store::Store;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's public id, or `jwt:{iss}#{sub}` for a token (for logs).
    pub key_id: String,
    /// Which scopes it reaches.
    pub scope: KeyScope,
    /// What it may do.
    pub role: Role,
}

impl Principal {
    /// True when the caller may read operations of `scope`.
    pub fn can_read(&self, scope: &Scope) -> bool {
        self.scope.covers(scope)
    }

    /// The scope a listing, watch or lease narrows to (`None`: every
    /// scope); 403 for a scope out of reach, 400 when the caller reaches
    /// several and named none. `verb` words the refusal ("list", "watch").
    pub fn narrow(&self, asked: Option<Scope>, verb: &str) -> Result<Option<Scope>, CoreError> {
        self.scope.narrow(asked).map_err(|refusal| match refusal {
            ScopeRefusal::NotCovered(scope) => {
                CoreError::Forbidden { message: format!("this key may not {verb} scope '{scope}'") }
            }
            ScopeRefusal::Ambiguous => CoreError::bad_request(
                "InvalidParameter",
                "scope",
                format!("this caller reaches several scopes: name the one to {verb} with scope"),
            ),
        })
    }

    /// Fails with 403 unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), CoreError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                message: format!("this key has the '{}' role; this call needs '{}'", self.role.as_str(), role.as_str()),
            })
        }
    }
}

/// Resolves a presented secret to its principal, as of `now`.
pub async fn authenticate(
    store: &dyn Store,
    usage: &usage::KeyUsage,
    secret: Option<&str>,
    now: Timestamp,
) -> Result<Principal, CoreError> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err(CoreError::Unauthenticated { message: "No credentials were presented.".into() });
    };
    let key = store.find_key_by_hash(&keys::hash_secret(secret)).await?;
    match key {
        Some(key) if key.allows(Role::Read, now) => {
            crate::http::caller::note_caller(&key.id, &key.scope.to_string());
            usage.note(&key.id, now);
            Ok(Principal { key_id: key.id.clone(), scope: key.scope.clone(), role: key.role })
        }
        _ => Err(CoreError::Unauthenticated { message: "The presented key is not valid.".into() }),
    }
}

/// The caller of a request carrying `Authorization: Bearer`: a JWT is
/// validated for `front` against the trusted issuers, anything else is
/// looked up as an API key.
pub async fn authenticate_bearer(
    store: &dyn Store,
    tokens: &jwt::Tokens,
    usage: &usage::KeyUsage,
    headers: &HeaderMap,
    front: jwt::Front,
    now: Timestamp,
) -> Result<Principal, CoreError> {
    match bearer_token(headers) {
        Some(token) if looks_like_jwt(token) => {
            let principal = tokens.verify(token, front).await?;
            crate::http::caller::note_caller(&principal.key_id, &principal.scope.to_string());
            Ok(principal)
        }
        secret => authenticate(store, usage, secret, now).await,
    }
}

/// Three dot-separated segments; API keys (`lr_…`) have no dots.
fn looks_like_jwt(token: &str) -> bool {
    !token.starts_with(keys::SECRET_PREFIX) && token.split('.').count() == 3
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The `WWW-Authenticate` challenge sent with every bearer 401; its
/// `error_description` is the error's message (what was wrong).
pub fn bearer_challenge(core: &CoreError) -> HeaderValue {
    const CHALLENGE: &str = r#"Bearer realm="longrun", error="invalid_token""#;
    // A quoted-string: no quote or backslash may end it early.
    let description: String =
        core.public_message().chars().map(|c| if matches!(c, '"' | '\\') { '\'' } else { c }).collect();
    HeaderValue::from_str(&format!(r#"{CHALLENGE}, error_description="{description}""#))
        .unwrap_or_else(|_| HeaderValue::from_static(CHALLENGE))
}
