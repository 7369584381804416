//! `longrun key create|list|revoke|rotate`: API keys, written straight to
//! the store (beside a serving process, too).

use super::KeyCommand;
use super::failure::{Failure, config_error, runtime_error};
use crate::model::{KeyScope, Role};
use crate::service::auth::keys;
use crate::service::operations;

/// Runs one key command.
pub async fn run(command: KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Create { scope, role, name, store } => {
            let scope = KeyScope::parse(&scope).map_err(config_error)?;
            let role = Role::parse(&role)
                .ok_or_else(|| config_error(format!("role '{role}' must be read, produce or admin")))?;
            let store = store.open().await.map_err(config_error)?;
            let (key, secret) = keys::create(store.as_ref(), scope, role, name, operations::now())
                .await
                .map_err(|e| runtime_error(format!("cannot store the key: {e}")))?;
            eprintln!(
                "Created {} (scope {}, role {}). The secret below is shown only once:",
                key.id,
                key.scope,
                key.role.as_str()
            );
            println!("{secret}");
            Ok(())
        }
        KeyCommand::Revoke { id, store } => {
            let store = store.open().await.map_err(config_error)?;
            match store.revoke_key(&id, operations::now()).await {
                Ok(()) => {
                    eprintln!("Revoked {id}.");
                    Ok(())
                }
                Err(crate::store::StoreError::NotFound) => Err(config_error(format!("no key has the id '{id}'"))),
                Err(e) => Err(runtime_error(e)),
            }
        }
        KeyCommand::Rotate { id, overlap, store } => {
            let store = store.open().await.map_err(config_error)?;
            let keys = store.list_keys().await.map_err(runtime_error)?;
            let now = operations::now();
            let old = keys
                .into_iter()
                .find(|k| k.id == id && k.allows(Role::Read, now))
                .ok_or_else(|| config_error(format!("no live key has the id '{id}'")))?;
            let (key, secret) = keys::create(store.as_ref(), old.scope.clone(), old.role, old.name.clone(), now)
                .await
                .map_err(|e| runtime_error(format!("cannot store the key: {e}")))?;
            let until = now.plus(overlap);
            store.revoke_key(&old.id, until).await.map_err(runtime_error)?;
            eprintln!(
                "Created {} to replace {} (scope {}, role {}); {} stops working at {}. The new secret, shown only once:",
                key.id,
                old.id,
                key.scope,
                key.role.as_str(),
                old.id,
                until.to_rfc3339_millis()
            );
            println!("{secret}");
            Ok(())
        }
        KeyCommand::List { store } => {
            let store = store.open().await.map_err(config_error)?;
            let keys = store.list_keys().await.map_err(runtime_error)?;
            let last_used: std::collections::HashMap<String, crate::model::Timestamp> =
                store.keys_last_used().await.map_err(runtime_error)?.into_iter().collect();
            let now = operations::now();
            println!(
                "{:<40} {:<8} {:<8} {:<25} {:<25} {:<45} NAME",
                "ID", "ROLE", "STATUS", "CREATED", "LAST USED", "SCOPE"
            );
            for key in keys {
                // "expiring": replaced by `key rotate`, still working for its overlap.
                let status = match key.revoked_at {
                    None => "active",
                    Some(at) if at > now => "expiring",
                    Some(_) => "revoked",
                };
                // Written by servers in batches (every 30 s and when they stop).
                let used = last_used.get(&key.id).map_or("never".to_owned(), |at| at.to_rfc3339_millis());
                println!(
                    "{:<40} {:<8} {:<8} {:<25} {:<25} {:<45} {}",
                    key.id,
                    key.role.as_str(),
                    status,
                    key.created_at.to_rfc3339_millis(),
                    used,
                    key.scope.to_string(),
                    key.name.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
