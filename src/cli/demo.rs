//! The operations `serve --demo` seeds at start-up, one per dialect, so a
//! client developer has something to poll at once.

use std::time::Duration;

use crate::model::{KeyScope, Kind, NewOperation, Role, Scope, ScriptStep, State};
use crate::service::auth::{Principal, keys};
use crate::service::operations::{self, Created, Policy};
use crate::store::Store;

/// What `serve --demo` seeds so a client developer can poll right away.
pub struct Seeded {
    /// A read key for every scope (printed once).
    pub key: String,
    /// One status URL per dialect, each operation scripted to finish.
    pub urls: Vec<(&'static str, String)>,
}

/// Seeds one scripted operation per dialect (NotStarted → Running 40 % at
/// 2 s → 80 % at 10 s → Succeeded at 20 s) and a read key to poll them.
pub async fn seed(store: &dyn Store, policy: &Policy, base_url: &str) -> anyhow::Result<Seeded> {
    let (_, key) =
        keys::create(store, KeyScope::All, Role::Read, Some("serve --demo".into()), policy.clock.now()).await?;
    let seeder = Principal { key_id: "serve --demo".into(), scope: KeyScope::All, role: Role::Produce };
    let step = |secs: u64, state: State, percent: f64| ScriptStep {
        after: Duration::from_secs(secs),
        state,
        percent_complete: Some(percent),
        resource_location: None,
        error: None,
    };
    let mut urls = Vec::new();
    for (dialect, scope, kind) in [
        ("Azure Sphere", "tenants/143adbc9-1bf0-4be2-84a2-084a331d81cb", "imageUpload"),
        ("Dev Center", "projects/demo", "deleteDevBox"),
        ("Face", "accounts/demo", "takeSnapshot"),
    ] {
        let request = NewOperation {
            scope: Scope::parse(scope).map_err(anyhow::Error::msg)?,
            kind: Kind::parse(kind).map_err(anyhow::Error::msg)?,
            resource_location: None,
            details_location: None,
            properties: None,
            script: Some(vec![
                step(2, State::Running, 40.0),
                step(10, State::Running, 80.0),
                step(20, State::Succeeded, 100.0),
            ]),
        };
        let (Created::New(op) | Created::Existing(op)) =
            operations::create(store, policy, &seeder, None, request).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        urls.push((dialect, format!("{base_url}{}", crate::dialect::operation_location(&op))));
    }
    Ok(Seeded { key, urls })
}
