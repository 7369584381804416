//! The `longrun` binary: parse the command line, run one command. Start-up
//! problems (bad flags, unusable store or address) print one line and exit
//! with code 2; failures while serving exit with 1.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use longrun::cli::config::{ServeConfig, StoreConfig};
use longrun::cli::config_file::{self, Setting};
use longrun::cli::{Cli, Command, ConfigCommand, KeyCommand, TokenCommand};
use longrun::model::{KeyScope, Role, Scope};
use longrun::server::app;
use longrun::service::auth::dev::{self, DevKey};
use longrun::service::auth::keys;
use longrun::service::operations;
use longrun::service::state::AppState;
use longrun::store::sqlite;

// jemalloc, purging freed pages from background threads, gives memory back
// after a spike (BENCHMARKS.md, memory under slow bodies); mimalloc when
// asked for by feature, to compare.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let from_file = match apply_config_file() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let parsed = Cli::command().try_get_matches().and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("error: invalid arguments");
            match config_file::origin_of_refused(&e, &from_file) {
                Some(origin) => eprintln!("{line} (set in {origin})"),
                None => eprintln!("{line}"),
            }
            return ExitCode::from(CONFIG_ERROR);
        }
        Err(e) => e.exit(), // --help, --version
    };
    if let Command::Config { command: ConfigCommand::Check(_) } = &cli.command {
        let check = ["config", "check"].iter().try_fold((Cli::command(), matches), |(command, matches), name| {
            let sub = command.find_subcommand(name)?.clone();
            let sub_matches = matches.subcommand_matches(name)?.clone();
            Some((sub, sub_matches))
        });
        let (command, matches) = check.expect("config check was parsed");
        println!("{}", config_file::describe_effective(&command, &matches, &from_file));
        return ExitCode::SUCCESS;
    }
    let log_writer = longrun::telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    let outcome = match cli.command {
        Command::Op { command } => runtime
            .block_on(longrun::cli::client::run(command))
            .map_err(|message| Failure { code: longrun::cli::client::CLIENT_ERROR, message: message.to_string() }),
        command => runtime.block_on(run(command)).map(|()| ExitCode::SUCCESS),
    };
    // The log lines still queued (the runtime's last ones included) go out
    // before the error line that ends the run.
    drop(runtime);
    drop(log_writer);
    match outcome {
        Ok(code) => code,
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Applies the config file (if one is named) as `LONGRUN_*` variables that
/// are not already set, so clap reads it below flags and environment.
/// Returns the settings it applied.
fn apply_config_file() -> Result<Vec<Setting>, String> {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let named = std::env::var("LONGRUN_CONFIG").ok();
    let Some(path) = config_file::named_path(&args, named) else { return Ok(Vec::new()) };
    let settings = config_file::read(&path, &longrun::cli::file_keys())?;
    let applied: Vec<Setting> = settings.into_iter().filter(|s| std::env::var_os(&s.env).is_none()).collect();
    for setting in &applied {
        // SAFETY: main has started no other thread yet (no runtime, no
        // logger), so nothing can read the environment concurrently.
        unsafe { std::env::set_var(&setting.env, &setting.value) };
    }
    Ok(applied)
}

struct Failure {
    code: u8,
    message: String,
}

fn config_error(e: impl std::fmt::Display) -> Failure {
    Failure { code: CONFIG_ERROR, message: format!("{e:#}") }
}

fn runtime_error(e: impl std::fmt::Display) -> Failure {
    Failure { code: 1, message: format!("{e:#}") }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(config) => serve(config).await,
        Command::Key { command } => key(command).await,
        Command::Backup { to, store } => {
            let copied = sqlite::backup::backup(&sqlite_dir(&store)?, &to).map_err(runtime_error)?;
            println!(
                "Backed up to {} ({} bytes, schema version {}).",
                to.display(),
                copied.bytes,
                copied.schema_version
            );
            Ok(())
        }
        Command::Restore { from, force, store } => {
            let dir = sqlite_dir(&store)?;
            let copied = sqlite::backup::restore(&from, &dir, force).map_err(config_error)?;
            println!(
                "Restored {} into {} (schema version {}).",
                from.display(),
                copied.path.display(),
                copied.schema_version
            );
            Ok(())
        }
        Command::Token { command } => token(command),
        Command::Op { .. } | Command::Config { .. } => unreachable!("handled in main"),
    }
}

/// Backups are SQLite's here; a PostgreSQL store has its own tools.
fn sqlite_dir(store: &StoreConfig) -> Result<std::path::PathBuf, Failure> {
    store.sqlite_dir().ok_or_else(|| {
        config_error(
            "longrun backup/restore work on the embedded SQLite store; for PostgreSQL use its own tools: \
             pg_dump (a logical copy) or pg_basebackup with WAL archiving (point-in-time recovery)",
        )
    })
}

async fn serve(config: ServeConfig) -> Result<(), Failure> {
    let dev = match config.dev {
        // The key sits in a file any local user with access to the data dir
        // can sign with: never trust it from the network.
        true if !config.listen.ip().is_loopback() => {
            return Err(config_error(format!(
                "--dev trusts a key kept in the data dir: listen on a loopback address, not {}",
                config.listen
            )));
        }
        true => Some(DevKey::load_or_create(&config.store.data_dir).map_err(config_error)?),
        false => None,
    };
    let _serving = match config.store.sqlite_dir() {
        Some(dir) => Some(sqlite::claim_for_serving(&dir).map_err(config_error)?),
        None => None,
    };
    let store = config.store.open().await.map_err(config_error)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| config_error(format!("cannot listen on {}: {e}", config.listen)))?;
    let address = listener.local_addr().map_err(config_error)?;
    if store.list_keys().await.map_err(config_error)?.is_empty() {
        println!(
            "No API keys yet; nothing can be read or written until you make one:\n  \
             longrun key create --scope '*' --role admin {}",
            config.store.flag()
        );
    }
    if let Some(dev) = &dev {
        println!(
            "dev mode: trusting tokens of issuer {} signed by {} (make one with \
             `longrun token mint --scope … --data-dir {}`)",
            dev::DEV_ISSUER,
            dev.path().display(),
            config.store.data_dir.display()
        );
    }
    let tokens = Arc::new(config.tokens(dev.map(|key| key.issuer())));
    let issuers: Vec<&str> = tokens.issuers().collect();
    if !issuers.is_empty() {
        println!("trusting bearer tokens of: {}", issuers.join(", "));
    }
    let shutdown = shutdown_signal();
    println!("longrun listening on http://{address} ({})", config.store.describe());
    let policy = Arc::new(config.policy());
    if config.demo {
        let base = format!("http://{address}");
        let seeded = longrun::cli::demo::seed(store.as_ref(), &policy, &base).await.map_err(runtime_error)?;
        println!("demo mode: scripted operations to poll (they finish in 20 s) with the read key {}", seeded.key);
        for (dialect, url) in seeded.urls {
            println!("  {dialect:<13} {url}");
        }
        println!("  (Face takes the key as Ocp-Apim-Subscription-Key; the others as Authorization: Bearer)");
    }
    let state = AppState {
        store,
        policy,
        retry_after: config.retry_after,
        demo: config.demo,
        stopping: Default::default(),
        waiters: Default::default(),
        tokens,
    };
    let limits = Arc::new(longrun::server::limits::Limits::new(config.limits()));
    app::serve_with_grace(listener, state, limits, shutdown, config.shutdown_grace)
        .await
        .map_err(|e| runtime_error(format!("server failed: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then finish. The
/// handlers are installed when this is called, not when the future is first
/// polled: a signal that arrives right after "listening" is printed must
/// stop the server gracefully, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let waited = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).expect("cannot install the SIGINT handler");
        let mut terminate = signal(SignalKind::terminate()).expect("cannot install the SIGTERM handler");
        async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        }
    };
    #[cfg(not(unix))]
    let waited = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    async move {
        waited.await;
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

async fn key(command: KeyCommand) -> Result<(), Failure> {
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
                Err(longrun::store::StoreError::NotFound) => Err(config_error(format!("no key has the id '{id}'"))),
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
            let last_used: std::collections::HashMap<String, longrun::model::Timestamp> =
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

fn token(command: TokenCommand) -> Result<(), Failure> {
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
