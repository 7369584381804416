//! The command line: one binary that serves and administers.

pub mod backup;
pub mod client;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod dev_cert;
pub mod failure;
pub mod keys;
pub mod serve;
pub mod table;
pub mod tokens;

use std::collections::BTreeMap;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cli::config::{ServeConfig, StoreConfig};

/// longrun: a durable status service for long-running operations.
#[derive(Debug, Parser)]
#[command(name = "longrun", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Log lines as text or JSON.
    #[arg(long, global = true, env = "LONGRUN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,

    /// A config file (TOML; its keys are these flags' long names). Flags
    /// and environment variables take precedence over it.
    #[arg(long, global = true, env = "LONGRUN_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// Every flag a config file may set: long name → its `LONGRUN_*` variable.
pub fn file_keys() -> BTreeMap<String, String> {
    fn collect(command: &clap::Command, keys: &mut BTreeMap<String, String>) {
        for arg in command.get_arguments() {
            if let (Some(long), Some(env)) = (arg.get_long(), arg.get_env())
                && long != "config"
            {
                keys.insert(long.to_owned(), env.to_string_lossy().into_owned());
            }
        }
        command.get_subcommands().for_each(|sub| collect(sub, keys));
    }
    let mut keys = BTreeMap::new();
    collect(&Cli::command(), &mut keys);
    keys
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(ServeConfig),
    /// Work with operations through a running server's API.
    Op {
        /// What to do.
        #[command(subcommand)]
        command: crate::cli::client::OpCommand,
    },
    /// Write a consistent snapshot of the SQLite database to a file, while
    /// the service keeps running (PostgreSQL: use pg_dump or pg_basebackup).
    Backup {
        /// The backup file to write (replaced atomically if it exists).
        #[arg(long)]
        to: std::path::PathBuf,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Restore a backup into a data directory, after checking it (stop every
    /// longrun using that directory first).
    Restore {
        /// The backup file (as `longrun backup` wrote it).
        #[arg(long)]
        from: std::path::PathBuf,
        /// Replace the database the data directory already holds.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// List and delete webhooks through a running server's API.
    Webhook {
        /// What to do.
        #[command(subcommand)]
        command: crate::cli::client::WebhookCommand,
    },
    /// Check a configuration without starting anything.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Development bearer tokens (trusted by `serve --dev`).
    Token {
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Make (once) a local CA and a certificate for localhost, 127.0.0.1 and
    /// ::1 in the data dir, for `serve --tls`, and print how to trust it.
    DevCert {
        /// Directory for longrun's data (the certificate lives in its tls/).
        #[arg(long = "data-dir", env = "LONGRUN_DATA_DIR", default_value = "./longrun-data")]
        data_dir: std::path::PathBuf,
    },
    /// Manage API keys (works on the data directory directly).
    Key {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// `longrun config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file, environment and flags of `serve` together and
    /// print the effective configuration (secrets redacted) with each value's source.
    Check(ServeConfig),
}

/// `longrun key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print its secret once (the secret alone on stdout).
    Create {
        /// Scope the key reaches: tenants/{uuid}, projects/{name}, accounts/{name} or '*'.
        #[arg(long)]
        scope: String,
        /// read, produce or admin (each includes the ones before it).
        #[arg(long, default_value = "read")]
        role: String,
        /// A label for humans.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Revoke a key by id (as `key list` shows it); effective on the next request.
    Revoke {
        /// The key's id, e.g. key_01a2….
        id: String,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Replace a key: a new secret (printed once) with the same scope, role and
    /// name; the old one keeps working for --overlap so clients can switch.
    Rotate {
        /// The key's id, e.g. key_01a2….
        id: String,
        /// How long the old secret keeps working, e.g. 1h (0s: revoke it now).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        overlap: std::time::Duration,
        #[command(flatten)]
        store: StoreConfig,
    },
}

/// `longrun token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a token with the data dir's development key pair (made on first
    /// use) and print it alone on stdout.
    Mint {
        /// A scope the token reaches (repeatable): tenants/{uuid}, projects/{name} or accounts/{name}.
        #[arg(long, required = true)]
        scope: Vec<String>,
        /// read, produce or admin.
        #[arg(long, default_value = "read")]
        role: String,
        /// Its audience: longrun (native API), https://devcenter.azure.com
        /// (Dev Center) or the Sphere audience.
        #[arg(long, default_value = crate::service::auth::dev::DEV_AUDIENCE)]
        audience: String,
        /// How long it is valid, e.g. 1h.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        expires_in: std::time::Duration,
        /// Its subject (`sub`), shown in logs as jwt:longrun-dev#SUBJECT.
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Directory for longrun's data (the key pair lives here).
        #[arg(long = "data-dir", env = "LONGRUN_DATA_DIR", default_value = "./longrun-data")]
        data_dir: std::path::PathBuf,
    },
}
