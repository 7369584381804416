//! The operations `serve --demo` seeds at start-up, one per dialect, so a
//! client developer has something to poll at once, and the read key to
//! poll them with: one per data dir, reused by every later start.

use std::path::Path;
use std::time::Duration;

use crate::model::{KeyScope, Kind, NewOperation, Role, Scope, ScriptStep, State};
use crate::service::auth::{Principal, keys};
use crate::service::operations::{self, Created, Policy};
use crate::store::Store;

/// Where a data dir keeps its demo read key's secret (mode 0600).
const KEY_FILE: &str = "demo-key";

/// What `serve --demo` seeds so a client developer can poll right away.
pub struct Seeded {
    /// A read key for every scope: this data dir's, made on its first demo.
    pub key: String,
    /// One status URL per dialect, each operation scripted to finish.
    pub urls: Vec<(&'static str, String)>,
}

/// Seeds one scripted operation per dialect (NotStarted → Running 40 % at
/// 2 s → 80 % at 10 s → Succeeded at 20 s) and the read key to poll them.
pub async fn seed(store: &dyn Store, policy: &Policy, base_url: &str, data_dir: &Path) -> anyhow::Result<Seeded> {
    let key = read_key(store, policy, data_dir).await?;
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

/// The data dir's demo read key while it still works, else a new one
/// (whose secret the data dir then keeps): two starts, one key.
async fn read_key(store: &dyn Store, policy: &Policy, data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(KEY_FILE);
    if let Ok(kept) = std::fs::read_to_string(&path) {
        let secret = kept.trim();
        let found = store.find_key_by_hash(&keys::hash_secret(secret)).await?;
        if found.is_some_and(|key| key.allows(Role::Read, policy.clock.now())) {
            return Ok(secret.to_owned());
        }
    }
    let (_, secret) =
        keys::create(store, KeyScope::All, Role::Read, Some("serve --demo".into()), policy.clock.now()).await?;
    std::fs::create_dir_all(data_dir)?;
    crate::server::dev_cert::write_file(&path, &secret, 0o600)?;
    Ok(secret)
}
