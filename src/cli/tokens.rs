//! `longrun token mint`: a bearer token signed by the development issuer's
//! key in the data dir, for `serve --dev`.

use super::TokenCommand;
use super::failure::{Failure, config_error, runtime_error};
use crate::model::{Role, Scope};
use crate::service::auth::dev::{self, DevKey};

/// Mints one token and prints it.
pub fn mint(command: TokenCommand) -> Result<(), Failure> {
    let TokenCommand::Mint { scope, role, audience, expires_in, subject, data_dir } = command;
    let scopes = scope.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>().map_err(config_error)?;
    let role =
        Role::parse(&role).ok_or_else(|| config_error(format!("role '{role}' must be read, produce or admin")))?;
    let key = DevKey::load_or_create(&data_dir).map_err(config_error)?;
    let token = key.mint(&scopes, role, &audience, &subject, expires_in).map_err(runtime_error)?;
    eprintln!(
        "Signed with {} (issuer {}); valid for {} on a `longrun serve --dev` with this data dir.",
        key.path().display(),
        dev::DEV_ISSUER,
        humantime::format_duration(expires_in)
    );
    println!("{token}");
    Ok(())
}
