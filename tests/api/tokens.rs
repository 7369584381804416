//! Bearer JWTs: issuers whose keys come from a JWKS URL (a tiny server the
//! test runs) or file, every way a token can be wrong (401 saying what was
//! wrong), scope isolation (the 404 of an unknown id), and the `token mint` +
//! `serve --dev` flow through the real binary.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use longrun::service::auth::jwt::{Audiences, IssuerConfig, Tokens};
use reqwest::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, TestApp, id_of, normalized, tenant, unknown_id};

const ISSUER: &str = "https://issuer.test/url";
const FILE_ISSUER: &str = "https://issuer.test/file";
pub(crate) const NATIVE_AUDIENCE: &str = "api://longrun";
pub(crate) const DEVCENTER: &str = "https://devcenter.azure.com";
pub(crate) const SPHERE: &str = "https://sphere.test";

/// An ES256 key pair made for the test.
pub(crate) struct Signer {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
}

impl Signer {
    pub(crate) fn new(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap().as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
        Signer { public: pair.public_key().as_ref().to_vec(), pkcs8, kid: kid.to_owned() }
    }

    pub(crate) fn jwk(&self) -> Value {
        let (x, y) = self.public[1..].split_at(32);
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }

    /// Signs `claims` under a header of the test's own making (members
    /// jsonwebtoken's `Header` cannot carry, such as `crit`).
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signed =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng).unwrap();
        let signature = pair.sign(&rng, signed.as_bytes()).unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

fn malformed_date(claim: &str) -> String {
    format!("The access token's '{claim}' claim is malformed: it must be whole seconds since 1970 (0 to 253402300799).")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims valid for ten minutes.
pub(crate) fn claims(issuer: &str, audience: &str, scopes: &[&str]) -> Value {
    let now = now();
    json!({"iss": issuer, "sub": "user-1", "aud": audience, "iat": now, "nbf": now, "exp": now + 600, "longrun_scope": scopes})
}

/// A JWKS URL whose document the test can change; counts its fetches.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> JwksServer {
        let (keys, fetches) = (Arc::new(Mutex::new(keys)), Arc::new(AtomicUsize::new(0)));
        let (served, counted) = (keys.clone(), fetches.clone());
        let router = axum::Router::new().route(
            "/keys",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let document = json!({"keys": served.lock().unwrap().clone()});
                async move { axum::Json(document) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        JwksServer { url, keys, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A server trusting `ISSUER` (keys at a JWKS URL serving `signer`'s,
/// scopes in `longrun_scope`) and `FILE_ISSUER` (`file_signer`'s key in a
/// JWKS file, `tid` → `tenants/{tid}`).
struct Setup {
    app: TestApp,
    signer: Signer,
    file_signer: Signer,
    jwks: JwksServer,
    _dir: tempfile::TempDir,
}

async fn setup(refresh: Duration) -> Setup {
    let (signer, file_signer) = (Signer::new("k1"), Signer::new("f1"));
    let jwks = JwksServer::start(vec![signer.jwk()]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, json!({"keys": [file_signer.jwk()]}).to_string()).unwrap();
    let issuers = vec![
        IssuerConfig::parse(&format!("iss={ISSUER},aud={NATIVE_AUDIENCE},jwks={}", jwks.url)).unwrap(),
        IssuerConfig::parse(&format!(
            "iss={FILE_ISSUER},aud={NATIVE_AUDIENCE},jwks=file:{},scope-claim=tid,scope-prefix=tenants/",
            file.display()
        ))
        .unwrap(),
    ];
    let audiences = Audiences { devcenter: DEVCENTER.into(), sphere: SPHERE.into() };
    let app = TestApp::spawn_trusting(Tokens::new(issuers, audiences, refresh)).await;
    Setup { app, signer, file_signer, jwks, _dir: dir }
}

fn devcenter_path(project: &str, id: &str) -> String {
    format!("/projects/{project}/operationstatuses/{id}?api-version=2025-02-01")
}

/// The full challenge a 401 must carry.
fn challenge(description: &str) -> String {
    format!(r#"Bearer realm="longrun", error="invalid_token", error_description="{description}""#)
}

#[tokio::test]
async fn a_valid_token_reads_its_scopes_operation_through_dev_center_sphere_and_the_native_api() {
    let Setup { app, signer, file_signer, _dir, .. } = setup(Duration::ZERO).await;
    let project_op = id_of(&app.create_ok("projects/alpha", "deleteDevBox").await);
    let tenant_id = tenant();
    let tenant_op = id_of(&app.create_ok(&format!("tenants/{tenant_id}"), "imageUpload").await);

    let devcenter = signer.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    let response = app.get_bearer(&devcenter_path("alpha", &project_op), &devcenter).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["name"], project_op.as_str());

    let native = signer.sign(&claims(ISSUER, NATIVE_AUDIENCE, &["projects/alpha"]));
    let response = app.get_bearer(&format!("/v1/operations/{project_op}"), &native).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = app.get_bearer("/v1/me", &native).await.json().await.unwrap();
    assert_eq!(me["keyId"], format!("jwt:{ISSUER}#user-1"));
    assert_eq!((me["scope"].as_str(), me["role"].as_str()), (Some("projects/alpha"), Some("read")));

    let mut sphere = claims(FILE_ISSUER, SPHERE, &[]);
    sphere["tid"] = json!(tenant_id);
    let sphere = file_signer.sign(&sphere);
    let response = app.get_bearer(&format!("/v2/tenants/{tenant_id}/operations/{tenant_op}"), &sphere).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["OperationId"], tenant_op.as_str());

    // The audience is per front: a Dev Center token is no native token.
    let response = app.get_bearer(&format!("/v1/operations/{project_op}"), &devcenter).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A read token cannot produce; one with longrun.produce can.
    let create = json!({"scope": "projects/alpha", "kind": "deleteDevBox"});
    assert_eq!(app.create_as(&native, create.clone()).await.status(), StatusCode::FORBIDDEN);
    let mut producer = claims(ISSUER, NATIVE_AUDIENCE, &["projects/alpha"]);
    producer["roles"] = json!(["longrun.produce"]);
    assert_eq!(app.create_as(&signer.sign(&producer), create).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_tokens_are_401_with_a_challenge_saying_what_was_wrong() {
    let Setup { app, signer, _dir, .. } = setup(Duration::ZERO).await;
    let id = id_of(&app.create_ok("projects/alpha", "deleteDevBox").await);
    let valid = || claims(ISSUER, DEVCENTER, &["projects/alpha"]);
    let with = |name: &str, value: Value| {
        let mut claims = valid();
        claims[name] = value;
        signer.sign(&claims)
    };
    let unsigned = |alg: &str| {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(valid().to_string());
        format!("{header}.{payload}.")
    };
    // Alg confusion: HS256 "signed" with the issuer's public key as the secret.
    let confused = {
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &valid(), &EncodingKey::from_secret(&signer.public)).unwrap()
    };
    let tampered = {
        let token = signer.sign(&valid());
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 1;
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
    };
    let stranger = Signer::new("k1");
    let cases = [
        (with("exp", json!(now() - 3600)), "The access token has expired.".to_owned()),
        (with("nbf", json!(now() + 3600)), "The access token is not yet valid (nbf).".to_owned()),
        (with("aud", json!(NATIVE_AUDIENCE)), format!("The access token's audience is not '{DEVCENTER}'.")),
        (
            with("iss", json!("https://evil.test")),
            "The access token's issuer 'https://evil.test' is not trusted.".into(),
        ),
        (Signer::new("k9").sign(&valid()), "The access token's signing key 'k9' is unknown to its issuer.".into()),
        (unsigned("none"), "The access token's algorithm 'none' is not supported (RS256, ES256).".into()),
        (confused, "The access token's algorithm 'HS256' is not supported (RS256, ES256).".into()),
        (tampered, "The access token's signature is not valid.".into()),
        (stranger.sign(&valid()), "The access token's signature is not valid.".into()),
        ("a.b.c".to_owned(), "The access token is malformed.".into()),
        (with("iss", json!("evil\r\n\"x")), "The access token's issuer 'evil???x' is not trusted.".into()),
        (
            signer.sign_with_header(&json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}), &valid()),
            "The access token's header names critical extensions ('crit') that longrun does not understand.".into(),
        ),
        (with("exp", json!(1e30)), malformed_date("exp")),
        (with("exp", json!(now() as f64 + 600.5)), malformed_date("exp")),
        (with("exp", json!("tomorrow")), malformed_date("exp")),
        (with("nbf", json!(-1)), malformed_date("nbf")),
    ];
    for (token, description) in cases {
        let response = app.get_bearer(&devcenter_path("alpha", &id), &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{description}");
        assert_eq!(response.headers()["www-authenticate"], challenge(&description).as_str());
        assert_eq!(response.headers()["x-ms-error-code"], "Unauthorized");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["message"], description.as_str());
    }
    // The same in Sphere's envelope.
    let tenant_id = tenant();
    let expired = with("exp", json!(now() - 3600));
    let response = app.get_bearer(&format!("/v2/tenants/{tenant_id}/operations/{}", unknown_id()), &expired).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], challenge("The access token has expired.").as_str());
    assert_eq!(response.headers()["content-type"], "application/problem+json; charset=utf-8");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["Detail"], "The access token has expired.");
}

#[tokio::test]
async fn an_unknown_kid_is_accepted_once_the_jwks_url_serves_it() {
    let Setup { app, signer: first, jwks, _dir, .. } = setup(Duration::ZERO).await;
    let id = id_of(&app.create_ok("projects/alpha", "deleteDevBox").await);
    let path = devcenter_path("alpha", &id);
    let rotated = Signer::new("k2");
    let token = rotated.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));

    let before = app.get_bearer(&path, &token).await;
    assert_eq!(before.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        before.headers()["www-authenticate"],
        challenge("The access token's signing key 'k2' is unknown to its issuer.").as_str()
    );
    jwks.keys.lock().unwrap().push(rotated.jwk());
    assert_eq!(app.get_bearer(&path, &token).await.status(), StatusCode::OK);
    // The old key still works, from the cache.
    let fetched = jwks.fetches();
    let old = first.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    assert_eq!(app.get_bearer(&path, &old).await.status(), StatusCode::OK);
    assert_eq!(jwks.fetches(), fetched, "a known kid needs no fetch");
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_refresh_interval() {
    let Setup { app, signer: first, jwks, _dir, .. } = setup(Duration::from_secs(3600)).await;
    let id = id_of(&app.create_ok("projects/alpha", "deleteDevBox").await);
    let path = devcenter_path("alpha", &id);
    let known = first.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    assert_eq!(app.get_bearer(&path, &known).await.status(), StatusCode::OK);
    assert_eq!(jwks.fetches(), 1);
    let rotated = Signer::new("k2");
    jwks.keys.lock().unwrap().push(rotated.jwk());
    let token = rotated.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    for _ in 0..5 {
        assert_eq!(app.get_bearer(&path, &token).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(jwks.fetches(), 1, "a flood of unknown kids must not become a flood of fetches");
}

#[tokio::test]
async fn an_rs256_token_verifies_against_a_jwks_file_and_hs256_with_its_public_key_does_not() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures");
    let issuer = "https://issuer.test/rsa";
    let config =
        format!("iss={issuer},aud={NATIVE_AUDIENCE},jwks=file:{}", fixtures.join("rs256-test-jwks.json").display());
    let audiences = Audiences { devcenter: DEVCENTER.into(), sphere: SPHERE.into() };
    let tokens = Tokens::new(vec![IssuerConfig::parse(&config).unwrap()], audiences, Duration::ZERO);
    let app = TestApp::spawn_trusting(tokens).await;
    let id = id_of(&app.create_ok("projects/alpha", "deleteDevBox").await);
    let path = devcenter_path("alpha", &id);
    let claims = claims(issuer, DEVCENTER, &["projects/alpha"]);

    let private = std::fs::read(fixtures.join("rs256-test-key.pem")).unwrap();
    let header = Header { kid: Some("rsa1".into()), ..Header::new(Algorithm::RS256) };
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&private).unwrap()).unwrap();
    assert_eq!(app.get_bearer(&path, &token).await.status(), StatusCode::OK);

    // The classic confusion: the public key's PEM as an HMAC secret.
    let public = std::fs::read(fixtures.join("rs256-test-key.pub.pem")).unwrap();
    let header = Header { kid: Some("rsa1".into()), ..Header::new(Algorithm::HS256) };
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap();
    let response = app.get_bearer(&path, &forged).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        challenge("The access token's algorithm 'HS256' is not supported (RS256, ES256).").as_str()
    );
    // An ES256 header on an RSA key's kid finds no key to check it with.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let (_, rest) = signed.split_once('.').unwrap();
    let es256 = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "rsa1"}).to_string());
    let response = app.get_bearer(&path, &format!("{es256}.{rest}.AAAA")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_jwks_url_is_503_not_401() {
    // Bound then dropped: nothing listens there any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let config = format!("iss={ISSUER},aud={NATIVE_AUDIENCE},jwks=http://{closed}/keys");
    let audiences = Audiences { devcenter: DEVCENTER.into(), sphere: SPHERE.into() };
    let tokens = Tokens::new(vec![IssuerConfig::parse(&config).unwrap()], audiences, Duration::ZERO);
    let app = TestApp::spawn_trusting(tokens).await;
    let token = Signer::new("k1").sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    let response = app.get_bearer(&devcenter_path("alpha", &unknown_id()), &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "the client should retry, not drop its token");
}

#[tokio::test]
async fn a_token_reaching_several_scopes_lists_the_one_it_names() {
    let Setup { app, signer, _dir, .. } = setup(Duration::ZERO).await;
    let op = id_of(&app.create_ok("accounts/bravo", "takeSnapshot").await);
    app.create_ok("projects/charlie", "deleteDevBox").await;
    let token = signer.sign(&claims(ISSUER, NATIVE_AUDIENCE, &["projects/alpha", "accounts/bravo"]));
    let unnamed = app.get_bearer("/v1/operations", &token).await;
    assert_eq!(unnamed.status(), StatusCode::BAD_REQUEST);
    let named: Value = app.get_bearer("/v1/operations?scope=accounts/bravo", &token).await.json().await.unwrap();
    let ids: Vec<&str> = named["value"].as_array().unwrap().iter().map(|op| op["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [op.as_str()]);
    let foreign = app.get_bearer("/v1/operations?scope=projects/charlie", &token).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let me: Value = app.get_bearer("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["scopes"], json!(["projects/alpha", "accounts/bravo"]));
}

#[tokio::test]
async fn a_token_for_one_scope_gets_for_another_scopes_operation_the_404_of_an_unknown_id() {
    let Setup { app, signer, file_signer, _dir, .. } = setup(Duration::ZERO).await;
    let theirs = id_of(&app.create_ok("projects/bravo", "deleteDevBox").await);
    let unknown = unknown_id();

    let token = signer.sign(&claims(ISSUER, DEVCENTER, &["projects/alpha"]));
    let foreign = normalized(app.get_bearer(&devcenter_path("bravo", &theirs), &token).await, &[&theirs]).await;
    let missing = normalized(app.get_bearer(&devcenter_path("bravo", &unknown), &token).await, &[&unknown]).await;
    assert!(foreign.starts_with("404"), "{foreign}");
    assert_eq!(foreign, missing);

    let token = signer.sign(&claims(ISSUER, NATIVE_AUDIENCE, &["projects/alpha", "accounts/charlie"]));
    let foreign = normalized(app.get_bearer(&format!("/v1/operations/{theirs}"), &token).await, &[&theirs]).await;
    let missing = normalized(app.get_bearer(&format!("/v1/operations/{unknown}"), &token).await, &[&unknown]).await;
    assert!(foreign.starts_with("404"), "{foreign}");
    assert_eq!(foreign, missing);

    let (mine, other) = (tenant(), tenant());
    let op = id_of(&app.create_ok(&format!("tenants/{other}"), "imageUpload").await);
    let mut claims = claims(FILE_ISSUER, SPHERE, &[]);
    claims["tid"] = json!(mine);
    let token = file_signer.sign(&claims);
    let path = |id: &str| format!("/v2/tenants/{other}/operations/{id}");
    let foreign = normalized(app.get_bearer(&path(&op), &token).await, &[&op]).await;
    let missing = normalized(app.get_bearer(&path(&unknown), &token).await, &[&unknown]).await;
    assert!(foreign.starts_with("404"), "{foreign}");
    assert_eq!(foreign, missing);
}

/// `longrun token mint …` through the real binary: its stdout, trimmed.
fn mint(data_dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["token", "mint", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "only the token on stdout: {token}");
    token
}

#[tokio::test]
async fn token_mint_and_serve_dev_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let producer = mint(&data, &["--scope", "projects/alpha", "--role", "produce"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev-token-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let reader = mint(&data, &["--scope", "projects/alpha", "--audience", DEVCENTER, "--expires-in", "5m"]);
    let data_arg = data.to_str().unwrap();
    let server = ServeProcess::start(dir.path(), &["--dev", "--data-dir", data_arg]);
    assert!(server.printed.iter().any(|line| line.starts_with("dev mode: trusting tokens of issuer longrun-dev")));
    assert!(server.printed.iter().any(|line| line == "trusting bearer tokens of: longrun-dev"));
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/operations", server.address))
        .bearer_auth(&producer)
        .json(&json!({"scope": "projects/alpha", "kind": "deleteDevBox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = id_of(&created.json().await.unwrap());
    let url = format!("{}{}", server.address, devcenter_path("alpha", &id));
    let read = client.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    // The producer's token is for the native audience, not Dev Center's.
    let wrong = client.get(&url).bearer_auth(&producer).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    drop(server);

    // Without --dev the same token is from an untrusted issuer.
    let server = ServeProcess::start(dir.path(), &["--data-dir", data_arg]);
    let url = format!("{}{}", server.address, devcenter_path("alpha", &id));
    let refused = client.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("'longrun-dev' is not trusted"));
}

#[test]
fn serve_dev_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["serve", "--dev", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"), "{output:?}");
}
