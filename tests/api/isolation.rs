//! Randomized scope isolation: several scopes of every kind, a read key and a
//! bearer JWT per scope, and every credential tries every operation id
//! through every route that can address it. Nothing of another scope may
//! come back, and each refusal must be byte-for-byte the refusal of an id
//! that does not exist (no existence leak). The seed is printed; set
//! `LONGRUN_ISOLATION_SEED` to replay one.

use longrun::model::Role;
use longrun::service::auth::jwt::{Audiences, IssuerConfig, Tokens};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use reqwest::RequestBuilder;
use serde_json::json;
use std::time::Duration;

use crate::helpers::{TestApp, id_of, normalized, tenant, unknown_id};
use crate::tokens::{DEVCENTER, NATIVE_AUDIENCE, SPHERE, Signer, claims};

const ISSUER: &str = "https://issuer.test/isolation";
const SCOPES_PER_KIND: usize = 2;
const OPERATIONS_PER_SCOPE: usize = 5;

/// What an operation's scope is, and the names its routes use.
#[derive(Clone, Debug, PartialEq)]
enum Owner {
    Tenant(String),
    Project(String),
    Account(String),
}

impl Owner {
    fn scope(&self) -> String {
        match self {
            Owner::Tenant(t) => format!("tenants/{t}"),
            Owner::Project(p) => format!("projects/{p}"),
            Owner::Account(a) => format!("accounts/{a}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Owner::Tenant(_) => "imageUpload",
            Owner::Project(_) => "deleteDevBox",
            Owner::Account(_) => "takeSnapshot",
        }
    }
}

/// How a credential travels.
#[derive(Clone, Copy, Debug)]
enum Credential<'a> {
    /// A read key: bearer, or `Ocp-Apim-Subscription-Key` on Face routes.
    Key(&'a str),
    /// Per-audience tokens: native, Dev Center, Sphere (Face takes none).
    Jwt { native: &'a str, devcenter: &'a str, sphere: &'a str },
}

/// One route addressing `id`: where it goes and who it belongs to.
#[derive(Clone, Debug)]
struct Route {
    /// The path with `{id}` standing for the operation id.
    template: String,
    /// The dialect the route speaks.
    front: Front,
    /// The scope the path names, if it names one.
    named: Option<Owner>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Front {
    Native,
    Sphere,
    DevCenter,
    Face,
    Google,
}

impl Route {
    fn path(&self, id: &str) -> String {
        self.template.replace("{id}", id)
    }

    /// Whether the route can show an operation of `owner` to its owner.
    fn fits(&self, owner: &Owner) -> bool {
        let front_fits = matches!(
            (self.front, owner),
            (Front::Native | Front::Google, _)
                | (Front::Sphere, Owner::Tenant(_))
                | (Front::DevCenter, Owner::Project(_))
                | (Front::Face, Owner::Account(_))
        );
        front_fits && self.named.as_ref().is_none_or(|named| named == owner)
    }
}

/// Every route that can address an operation of `target`, including the
/// caller's own scope path (`/projects/mine/operationstatuses/{their id}`).
fn routes(caller: &Owner, target: &Owner) -> Vec<Route> {
    let mut routes = vec![
        Route { template: "/v1/operations/{id}".into(), front: Front::Native, named: None },
        Route { template: "/v1/operations/{id}:wait?timeout=0s".into(), front: Front::Native, named: None },
        Route { template: "/face/v1.0-preview/operations/{id}".into(), front: Front::Face, named: None },
        Route { template: "/face/v1.0/operations/{id}".into(), front: Front::Face, named: None },
    ];
    let mut named = vec![target.clone()];
    if caller != target {
        named.push(caller.clone());
    }
    for owner in named {
        let template = format!("/v1/{}/operations/{{id}}", owner.scope());
        routes.push(Route { template, front: Front::Google, named: Some(owner.clone()) });
        match &owner {
            Owner::Tenant(t) => {
                let generic = format!("/v2/tenants/{t}/operations/{{id}}");
                let typed = format!("/v2/tenants/{t}/operationTypes/{}/operations/{{id}}", target.kind());
                for template in [generic, typed] {
                    routes.push(Route { template, front: Front::Sphere, named: Some(owner.clone()) });
                }
            }
            Owner::Project(p) => {
                let template = format!("/projects/{p}/operationstatuses/{{id}}?api-version=2025-02-01");
                routes.push(Route { template, front: Front::DevCenter, named: Some(owner.clone()) });
            }
            Owner::Account(_) => {}
        }
    }
    routes
}

fn request(app: &TestApp, credential: Credential<'_>, route: &Route, id: &str) -> Option<RequestBuilder> {
    let request = app.client.get(format!("{}{}", app.address, route.path(id)));
    Some(match (credential, route.front) {
        (Credential::Key(key), Front::Face) => request.header("Ocp-Apim-Subscription-Key", key),
        (Credential::Key(key), _) => request.bearer_auth(key),
        (Credential::Jwt { .. }, Front::Face) => return None,
        (Credential::Jwt { native, .. }, Front::Native | Front::Google) => request.bearer_auth(native),
        (Credential::Jwt { devcenter, .. }, Front::DevCenter) => request.bearer_auth(devcenter),
        (Credential::Jwt { sphere, .. }, Front::Sphere) => request.bearer_auth(sphere),
    })
}

#[derive(Debug, Default)]
struct Totals {
    requests: usize,
    own_successes: usize,
    cross_scope_successes: usize,
    denials: usize,
    /// Denials by status code.
    denied_with: std::collections::BTreeMap<u16, usize>,
}

#[tokio::test]
async fn no_credential_reaches_another_scopes_operation_and_every_refusal_looks_like_an_unknown_id() {
    let seed = std::env::var("LONGRUN_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    println!("isolation seed: {seed} (replay with LONGRUN_ISOLATION_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let signer = Signer::new("iso1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [signer.jwk()]}).to_string()).unwrap();
    let issuer = IssuerConfig::parse(&format!("iss={ISSUER},aud={NATIVE_AUDIENCE},jwks=file:{}", jwks.display()));
    let audiences = Audiences { devcenter: DEVCENTER.into(), sphere: SPHERE.into() };
    let app = TestApp::spawn_trusting(Tokens::new(vec![issuer.unwrap()], audiences, Duration::ZERO)).await;

    let mut owners = Vec::new();
    for n in 0..SCOPES_PER_KIND {
        owners.push(Owner::Tenant(tenant()));
        owners.push(Owner::Project(format!("proj-{n}-{}", rng.random::<u16>())));
        owners.push(Owner::Account(format!("acct-{n}-{}", rng.random::<u16>())));
    }
    owners.shuffle(&mut rng);

    // Creation order is shuffled too, so ids (v7, time-ordered) do not group by scope.
    let mut plan: Vec<&Owner> = owners.iter().flat_map(|o| std::iter::repeat_n(o, OPERATIONS_PER_SCOPE)).collect();
    plan.shuffle(&mut rng);
    let mut operations = Vec::new();
    for owner in plan {
        let op = app.create_ok(&owner.scope(), owner.kind()).await;
        // Some running, some finished: a state must not change what leaks.
        if rng.random_bool(0.5) {
            let failed = json!({"state": "Failed", "error": {"code": "Boom", "message": "it broke"}});
            let patch =
                [json!({"state": "Running"}), json!({"state": "Succeeded"}), failed].choose(&mut rng).unwrap().clone();
            app.patch_ok(&id_of(&op), patch).await;
        }
        operations.push((owner.clone(), id_of(&op)));
    }

    let mut credentials = Vec::new();
    for (n, owner) in owners.iter().enumerate() {
        let key = app.key(&owner.scope(), Role::Read).await;
        let token = |audience: &str| {
            let mut claims = claims(ISSUER, audience, &[&owner.scope()]);
            claims["sub"] = json!(format!("user-{n}"));
            signer.sign(&claims)
        };
        let tokens = [token(NATIVE_AUDIENCE), token(DEVCENTER), token(SPHERE)];
        credentials.push((owner.clone(), key, tokens));
    }

    let mut attempts = Vec::new();
    for (caller, key, tokens) in &credentials {
        let jwt = Credential::Jwt { native: &tokens[0], devcenter: &tokens[1], sphere: &tokens[2] };
        for credential in [Credential::Key(key), jwt] {
            for (target, id) in &operations {
                for route in routes(caller, target) {
                    attempts.push((caller, credential, target, id, route));
                }
            }
        }
    }
    attempts.shuffle(&mut rng);

    let mut totals = Totals::default();
    for (caller, credential, target, id, route) in attempts {
        let Some(request) = request(&app, credential, &route, id) else { continue };
        totals.requests += 1;
        let response = request.send().await.unwrap();
        let status = response.status();
        let context = format!("{credential:?} of {caller:?} → {target:?} via {}", route.path(id));
        if caller == target && route.fits(target) {
            assert_eq!(status, reqwest::StatusCode::OK, "{context}");
            // Face's OperationStatus names no id (seed 002); the others do.
            let body = response.text().await.unwrap();
            assert!(route.front == Front::Face || body.contains(id.as_str()), "{context}: {body}");
            totals.own_successes += 1;
            continue;
        }
        if status.is_success() {
            totals.cross_scope_successes += 1;
            eprintln!("LEAK: {status} {context}");
            continue;
        }
        *totals.denied_with.entry(status.as_u16()).or_default() += 1;
        let refused = normalized(response, &[id]).await;
        let unknown = unknown_id();
        let missing = request_for_unknown(&app, credential, &route, &unknown).await;
        let missing = normalized(missing, &[&unknown]).await;
        totals.requests += 1;
        assert_eq!(refused, missing, "{context}: the refusal differs from an unknown id's");
        totals.denials += 1;
    }
    println!("isolation seed {seed}: {totals:?}");
    assert_eq!(totals.cross_scope_successes, 0, "seed {seed}: {totals:?}");
    // Per own operation, both native routes and Google's by key and by
    // token, plus its Azure dialect's: Sphere's two by both, Dev Center's by
    // both, Face's two by key.
    let per_kind = OPERATIONS_PER_SCOPE * SCOPES_PER_KIND;
    assert_eq!(totals.own_successes, per_kind * (10 + 8 + 8), "{totals:?}");
    app.stop().await;
}

async fn request_for_unknown(app: &TestApp, credential: Credential<'_>, route: &Route, id: &str) -> reqwest::Response {
    request(app, credential, route, id).expect("the same route").send().await.unwrap()
}
