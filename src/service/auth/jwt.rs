//! Bearer JWTs (SPEC §4): trusted issuers, their signing keys (a JWKS file or
//! URL, cached, fetched again when a token names an unknown `kid` but at most
//! once per refresh interval), and the claims that map a token to scopes and
//! a role. RS256 and ES256 only: the key decides the algorithm, never the
//! token, so an HS256 token "signed" with a public key is refused.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::Principal;
use crate::http::error::CoreError;
use crate::model::{KeyScope, Role, Scope};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// Keys older than this are fetched again even if every `kid` is known, so
/// a key the issuer retired stops being trusted.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

/// How long a JWKS URL may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document on disk (read again on refresh).
    File(PathBuf),
    /// A JWKS URL (`https://…/discovery/keys`).
    Url(String),
    /// Keys held in memory (the development issuer).
    Fixed(JwkSet),
}

/// One trusted issuer, as `--jwt-issuer` spells it:
/// `iss=…,aud=…,jwks=file:/path|https://…[,scope-claim=…][,scope-prefix=…]`.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// The audience its tokens must carry on the native API (`/v1`).
    pub audience: String,
    /// Its signing keys.
    pub keys: KeySource,
    /// The claim listing the scopes a token reaches (a string, several
    /// separated by spaces, or an array of strings).
    pub scope_claim: String,
    /// Put before each claim value to make a scope, e.g. `tenants/` for `tid`.
    pub scope_prefix: String,
}

/// The claim `scope-claim` defaults to.
pub const DEFAULT_SCOPE_CLAIM: &str = "longrun_scope";

impl IssuerConfig {
    /// Parses the `--jwt-issuer` form.
    pub fn parse(text: &str) -> Result<IssuerConfig, String> {
        let (mut issuer, mut audience, mut keys) = (None, None, None);
        let (mut scope_claim, mut scope_prefix) = (DEFAULT_SCOPE_CLAIM.to_owned(), String::new());
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("'{part}' is not name=value"))?;
            let value = value.trim().to_owned();
            match name.trim() {
                "iss" => issuer = Some(value),
                "aud" => audience = Some(value),
                "jwks" => keys = Some(parse_source(&value)?),
                "scope-claim" => scope_claim = value,
                "scope-prefix" => scope_prefix = value,
                other => {
                    return Err(format!(
                        "unknown issuer setting '{other}' (iss, aud, jwks, scope-claim, scope-prefix)"
                    ));
                }
            }
        }
        let missing = |name: &str| format!("an issuer needs {name}= (iss=…,aud=…,jwks=file:/path|https://…)");
        Ok(IssuerConfig {
            issuer: issuer.filter(|i| !i.is_empty()).ok_or_else(|| missing("iss"))?,
            audience: audience.filter(|a| !a.is_empty()).ok_or_else(|| missing("aud"))?,
            keys: keys.ok_or_else(|| missing("jwks"))?,
            scope_claim,
            scope_prefix,
        })
    }
}

fn parse_source(value: &str) -> Result<KeySource, String> {
    if let Some(path) = value.strip_prefix("file:") {
        Ok(KeySource::File(path.into()))
    } else if value.starts_with("https://") || value.starts_with("http://") {
        Ok(KeySource::Url(value.to_owned()))
    } else {
        Err(format!("jwks '{value}' must be file:/path or an http(s) URL"))
    }
}

/// Which front-end a token is presented to: each requires its own audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The native API: the issuer's own `aud`.
    Native,
    /// Azure Sphere: `--jwt-sphere-audience`.
    Sphere,
    /// Azure Dev Center: `--jwt-devcenter-audience`.
    DevCenter,
}

/// The audiences the Azure dialects require, whoever issued the token.
#[derive(Debug, Clone)]
pub struct Audiences {
    /// What Dev Center tokens carry (`https://devcenter.azure.com`).
    pub devcenter: String,
    /// What Sphere tokens carry.
    pub sphere: String,
}

/// The trusted issuers and their cached keys.
pub struct Tokens {
    issuers: Vec<Trusted>,
    audiences: Audiences,
    refresh: Duration,
    client: reqwest::Client,
}

struct Trusted {
    config: IssuerConfig,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<SigningKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried: refreshes are at most one per interval.
    tried: Option<Instant>,
}

struct SigningKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Tokens {
    /// Trusts `issuers`; a token naming an unknown key refetches its
    /// issuer's keys at most once per `refresh`.
    pub fn new(issuers: Vec<IssuerConfig>, audiences: Audiences, refresh: Duration) -> Tokens {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().expect("a default TLS client builds");
        let issuers = issuers.into_iter().map(|config| Trusted { config, cache: Mutex::default() }).collect();
        Tokens { issuers, audiences, refresh, client }
    }

    /// Trusts no issuer: every token is refused (API keys still work).
    pub fn none() -> Tokens {
        let audiences = Audiences { devcenter: String::new(), sphere: String::new() };
        Tokens::new(Vec::new(), audiences, Duration::ZERO)
    }

    /// The trusted issuers' `iss` values.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|t| t.config.issuer.as_str())
    }

    /// Validates `token` for `front` and says who it is; every failure is a
    /// 401 whose message (the `error_description`) says what was wrong.
    pub async fn verify(&self, token: &str, front: Front) -> Result<Principal, CoreError> {
        let refused = |why: String| CoreError::Unauthenticated { message: why };
        let malformed = || refused("The access token is malformed.".into());
        let mut parts = token.split('.');
        let (Some(header), Some(payload)) = (parts.next().and_then(segment), parts.next().and_then(segment)) else {
            return Err(malformed());
        };
        let alg = header.get("alg").and_then(Value::as_str).map_or_else(|| "(none)".into(), shown);
        let algorithm = match alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(refused(format!(
                    "The access token's algorithm '{other}' is not supported (RS256, ES256)."
                )));
            }
        };
        if header.get("crit").is_some() {
            // RFC 7515 §4.1.11: every extension named critical must be
            // understood, and longrun understands none.
            return Err(refused(
                "The access token's header names critical extensions ('crit') that longrun does not understand.".into(),
            ));
        }
        for claim in ["exp", "nbf"] {
            if payload.get(claim).is_some_and(|value| !is_numeric_date(value)) {
                return Err(refused(format!(
                    "The access token's '{claim}' claim is malformed: it must be whole seconds since 1970 (0 to 253402300799)."
                )));
            }
        }
        let issuer = payload.get("iss").and_then(Value::as_str).unwrap_or_default();
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.config.issuer == issuer)
            .ok_or_else(|| refused(format!("The access token's issuer '{}' is not trusted.", shown(issuer))))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = trusted.keys(kid, algorithm, self).await?;
        if keys.is_empty() {
            let named = kid.map(|k| format!(" '{}'", shown(k))).unwrap_or_default();
            return Err(refused(format!("The access token's signing key{named} is unknown to its issuer.")));
        }
        let audience = match front {
            Front::Native => &trusted.config.audience,
            Front::Sphere => &self.audiences.sphere,
            Front::DevCenter => &self.audiences.devcenter,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut outcome = Err(ErrorKind::InvalidSignature);
        for key in keys {
            outcome =
                jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims).map_err(|e| e.into_kind());
            if !matches!(outcome, Err(ErrorKind::InvalidSignature)) {
                break;
            }
        }
        let claims = outcome.map_err(|kind| {
            refused(match kind {
                ErrorKind::ExpiredSignature => "The access token has expired.".into(),
                ErrorKind::ImmatureSignature => "The access token is not yet valid (nbf).".into(),
                ErrorKind::InvalidAudience => format!("The access token's audience is not '{audience}'."),
                ErrorKind::InvalidSignature => "The access token's signature is not valid.".into(),
                ErrorKind::MissingRequiredClaim(claim) => format!("The access token has no '{claim}' claim."),
                _ => "The access token is malformed.".into(),
            })
        })?;
        principal(&trusted.config, &claims).ok_or_else(|| {
            let claim = &trusted.config.scope_claim;
            refused(format!("The access token's '{claim}' claim names no scope."))
        })
    }
}

/// A NumericDate longrun accepts: whole seconds from 1970 to the end of
/// year 9999 (a fraction, an exponent past that range or a string is not).
fn is_numeric_date(value: &Value) -> bool {
    value.as_u64().is_some_and(|seconds| seconds <= 253_402_300_799)
}

/// A value from an unverified token, fit to echo in a message and a header's
/// quoted-string: printable ASCII but quotes and backslashes, at most 100 characters.
fn shown(text: &str) -> String {
    let fit = |c: char| (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\');
    text.chars().take(100).map(|c| if fit(c) { c } else { '?' }).collect()
}

/// A base64url JSON object segment, unverified (read only to pick the issuer
/// and key; nothing is trusted before the signature is checked).
fn segment(text: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok().filter(Value::is_object)
}

/// Who a verified token is: `jwt:{iss}#{sub}`, its scopes, its role.
fn principal(config: &IssuerConfig, claims: &Value) -> Option<Principal> {
    let values: Vec<&str> = match claims.get(&config.scope_claim) {
        Some(Value::String(text)) => text.split_whitespace().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut scopes: Vec<Scope> = Vec::new();
    for scope in values.iter().filter_map(|v| Scope::parse(&format!("{}{v}", config.scope_prefix)).ok()) {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let scope = match scopes.len() {
        0 => return None,
        1 => KeyScope::One(scopes.remove(0)),
        _ => KeyScope::Many(scopes),
    };
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    Some(Principal { key_id: format!("jwt:{}#{subject}", config.issuer), scope, role: role_of(claims) })
}

/// The role a token's `roles` claim grants: `longrun.admin`, `longrun.produce`, else read.
fn role_of(claims: &Value) -> Role {
    let roles: Vec<&str> = match claims.get("roles") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(text)) => text.split_whitespace().collect(),
        _ => Vec::new(),
    };
    [(ROLE_ADMIN, Role::Admin), (ROLE_PRODUCE, Role::Produce)]
        .into_iter()
        .find(|(name, _)| roles.contains(name))
        .map_or(Role::Read, |(_, role)| role)
}

/// The `roles` value granting the admin role.
pub const ROLE_ADMIN: &str = "longrun.admin";
/// The `roles` value granting the produce role.
pub const ROLE_PRODUCE: &str = "longrun.produce";

/// The `roles` claim value for `role` (`None` for read, which needs none).
pub fn role_claim(role: Role) -> Option<&'static str> {
    match role {
        Role::Read => None,
        Role::Produce => Some(ROLE_PRODUCE),
        Role::Admin => Some(ROLE_ADMIN),
    }
}

impl Trusted {
    /// The keys that may have signed a token naming `kid` with `algorithm`,
    /// fetching the issuer's keys when stale or when `kid` is unknown.
    async fn keys(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        tokens: &Tokens,
    ) -> Result<Vec<DecodingKey>, CoreError> {
        // One lock for lookup and fetch: concurrent tokens naming a new kid
        // wait for one fetch instead of each starting their own.
        let mut cache = self.cache.lock().await;
        let fresh = cache.fetched.is_some_and(|at| at.elapsed() < MAX_KEY_AGE);
        let found = cache.matching(kid, algorithm);
        if fresh && !found.is_empty() {
            return Ok(found);
        }
        if cache.tried.is_some_and(|at| at.elapsed() < tokens.refresh) {
            return if cache.fetched.is_some() { Ok(found) } else { Err(unreachable_keys()) };
        }
        cache.tried = Some(Instant::now());
        match fetch(&self.config.keys, &tokens.client).await {
            Ok(set) => {
                cache.keys = signing_keys(&set);
                cache.fetched = cache.tried;
            }
            Err(e) if cache.fetched.is_some() => {
                tracing::warn!(issuer = %self.config.issuer, error = %format!("{e:#}"), "cannot refresh signing keys; keeping the ones held");
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %format!("{e:#}"), "cannot fetch signing keys");
                return Err(unreachable_keys());
            }
        }
        Ok(cache.matching(kid, algorithm))
    }
}

fn unreachable_keys() -> CoreError {
    CoreError::Unavailable("the token issuer's signing keys cannot be fetched".into())
}

impl Cache {
    fn matching(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<DecodingKey> {
        self.keys
            .iter()
            .filter(|k| k.algorithm == algorithm && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .map(|k| k.key.clone())
            .collect()
    }
}

async fn fetch(source: &KeySource, client: &reqwest::Client) -> anyhow::Result<JwkSet> {
    use anyhow::Context;
    match source {
        KeySource::Fixed(set) => Ok(set.clone()),
        KeySource::File(path) => {
            // A few KiB, read at most once per refresh: not worth a blocking-pool hop.
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_slice(&bytes).with_context(|| format!("{} is no JWKS", path.display()))
        }
        KeySource::Url(url) => {
            let response = client.get(url).send().await.and_then(|r| r.error_for_status());
            let response = response.with_context(|| format!("cannot fetch {url}"))?;
            response.json().await.with_context(|| format!("{url} serves no JWKS"))
        }
    }
}

/// The RS256 and ES256 keys of a set; any other key type is ignored.
fn signing_keys(set: &JwkSet) -> Vec<SigningKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
                _ => return None,
            };
            let declared = jwk.common.key_algorithm;
            if declared.is_some_and(|d| {
                !matches!(
                    (d, algorithm),
                    (KeyAlgorithm::RS256, Algorithm::RS256) | (KeyAlgorithm::ES256, Algorithm::ES256)
                )
            }) {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(SigningKey { kid: jwk.common.key_id.clone(), algorithm, key })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_parse_from_one_flag_value() {
        let config = IssuerConfig::parse(
            "iss=https://login.example/t/v2.0,aud=api://longrun,jwks=https://login.example/keys,scope-claim=tid,scope-prefix=tenants/",
        )
        .unwrap();
        assert_eq!(config.issuer, "https://login.example/t/v2.0");
        assert_eq!(config.audience, "api://longrun");
        assert!(matches!(config.keys, KeySource::Url(ref u) if u == "https://login.example/keys"));
        assert_eq!((config.scope_claim.as_str(), config.scope_prefix.as_str()), ("tid", "tenants/"));
        let file = IssuerConfig::parse("iss=a,aud=b,jwks=file:/etc/jwks.json").unwrap();
        assert!(matches!(file.keys, KeySource::File(ref p) if p == std::path::Path::new("/etc/jwks.json")));
        assert_eq!(file.scope_claim, DEFAULT_SCOPE_CLAIM);
        for bad in [
            "aud=b,jwks=file:/x",
            "iss=a,jwks=file:/x",
            "iss=a,aud=b",
            "iss=a,aud=b,jwks=/x",
            "iss=a,aud=b,jwks=file:/x,colour=red",
        ] {
            assert!(IssuerConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claims_map_to_scopes_and_a_role() {
        let config = IssuerConfig::parse("iss=i,aud=a,jwks=file:/x,scope-claim=tid,scope-prefix=tenants/").unwrap();
        let tenant = "6f0e0a6e-31a4-4b0c-9d6a-0b1b2f3c4d5e";
        let claims = serde_json::json!({"sub": "u1", "tid": tenant, "roles": ["longrun.produce"]});
        let one = principal(&config, &claims).unwrap();
        assert_eq!(one.key_id, "jwt:i#u1");
        assert_eq!(one.scope.to_string(), format!("tenants/{tenant}"));
        assert_eq!(one.role, Role::Produce);
        let several = IssuerConfig::parse("iss=i,aud=a,jwks=file:/x").unwrap();
        let claims = serde_json::json!({"longrun_scope": ["projects/alpha", "accounts/bravo", "*", "nowhere"], "roles": "longrun.admin"});
        let many = principal(&several, &claims).unwrap();
        assert_eq!(many.scope.to_string(), "projects/alpha,accounts/bravo");
        assert_eq!(many.role, Role::Admin);
        assert!(principal(&several, &serde_json::json!({"longrun_scope": "*"})).is_none());
        assert_eq!(role_of(&serde_json::json!({"roles": ["other"]})), Role::Read);
    }
}
