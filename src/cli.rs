//! The command line: one binary that serves and administers.

use clap::{Parser, Subcommand};

use crate::config::{ServeConfig, StoreConfig};

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
        command: crate::client::OpCommand,
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
    /// Manage API keys (works on the data directory directly).
    Key {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeyCommand,
    },
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
}
