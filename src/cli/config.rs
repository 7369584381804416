//! Configuration: flags, each with a `LONGRUN_*` environment variable, and
//! defaults that work with no configuration at all. Doc comments are --help.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::model::{Kind, Retention, Scope};
use crate::server::limits::LimitSettings;
use crate::service::auth::jwt::{Audiences, IssuerConfig, Tokens};
use crate::service::operations::Policy;
use crate::store::{self, Store};

/// Where operations and keys are stored.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// Directory for longrun's data (the SQLite file lives here).
    #[arg(long = "data-dir", env = "LONGRUN_DATA_DIR", default_value = "./longrun-data")]
    pub data_dir: PathBuf,

    /// A shared store instead of the embedded one: postgres://user@host/db.
    #[arg(long = "store", env = "LONGRUN_STORE")]
    pub url: Option<String>,

    /// Most connections to a shared store (PostgreSQL) per node.
    #[arg(long, env = "LONGRUN_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool_size: u16,
}

impl StoreConfig {
    /// Opens the store this configuration names.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        store::open(self.url.as_deref(), &self.data_dir, usize::from(self.pool_size)).await
    }

    /// The SQLite data directory; `None` for a shared (PostgreSQL) store.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        match self.url.as_deref() {
            None => Some(self.data_dir.clone()),
            Some(url) => url.strip_prefix("sqlite:").map(PathBuf::from),
        }
    }

    /// Where the data lives, for humans (never prints a password).
    pub fn describe(&self) -> String {
        match &self.url {
            Some(url) => format!("store {}", url.rsplit('@').next().unwrap_or(url)),
            None => format!("data in {}", self.data_dir.display()),
        }
    }

    /// The flag that points another command at the same store.
    pub fn flag(&self) -> String {
        match &self.url {
            Some(_) => "--store <the same URL>".to_owned(),
            None => format!("--data-dir {}", self.data_dir.display()),
        }
    }
}

/// `longrun serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "LONGRUN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Also serve google.longrunning.Operations over gRPC (plaintext HTTP/2)
    /// on this address; off when unset (port 0 picks a free one).
    #[arg(long, env = "LONGRUN_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub store: StoreConfig,

    /// Seconds pollers are told to wait between polls (Retry-After), 1..=3600.
    #[arg(long, env = "LONGRUN_RETRY_AFTER", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub retry_after: u32,

    /// Emulator mode: operations started through the Azure-style initiating
    /// calls advance by themselves (Running after 1 s, Succeeded after 3 s).
    #[arg(long, env = "LONGRUN_DEMO")]
    pub demo: bool,

    /// Allow --demo on a non-loopback address (it prints a read key for
    /// every scope and answers anyone who has it).
    #[arg(long, env = "LONGRUN_DEMO_PUBLIC")]
    pub demo_public: bool,

    /// How long finished operations are kept, e.g. 7d or 36h (at least 24h).
    #[arg(long, env = "LONGRUN_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub retention: Duration,

    /// How long failed operations are kept (at least 24h): longer, to investigate.
    #[arg(long, env = "LONGRUN_RETENTION_FAILED", default_value = "30d", value_parser = parse_retention)]
    pub retention_failed: Duration,

    /// Per-scope retention: scope=finished[/failed], e.g. projects/audit=90d/180d.
    #[arg(long, env = "LONGRUN_RETENTION_BY_SCOPE", value_parser = parse_scope_retention, value_delimiter = ',')]
    pub retention_by_scope: Vec<(Scope, Retention)>,

    /// Worker attempts before an operation fails with WorkerLost.
    #[arg(long, env = "LONGRUN_MAX_ATTEMPTS", default_value_t = crate::service::operations::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Per-kind worker attempts, e.g. deleteDevBox=5,imageUpload=1.
    #[arg(long, env = "LONGRUN_MAX_ATTEMPTS_BY_KIND", value_parser = parse_attempts, value_delimiter = ',')]
    pub max_attempts_by_kind: Vec<(Kind, u32)>,

    /// How long a graceful stop (SIGTERM) waits for in-flight requests
    /// before it closes the database anyway, e.g. 10s or 1m.
    #[arg(long, env = "LONGRUN_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_grace)]
    pub shutdown_grace: Duration,

    /// How long a Repeatability-Request-ID is remembered (at least 5m).
    #[arg(long, env = "LONGRUN_REPEATABILITY_WINDOW", default_value = "10m", value_parser = parse_window)]
    pub repeatability_window: Duration,

    /// Requests per second per credential (bursts of twice that); 0 = no limit.
    #[arg(long, env = "LONGRUN_RATE_LIMIT", default_value_t = LimitSettings::default().per_credential)]
    pub rate_limit: u32,

    /// Requests per second per client address (bursts of twice that); 0 = no
    /// limit. Set it when clients reach longrun directly, not through a proxy.
    #[arg(long, env = "LONGRUN_RATE_LIMIT_PER_ADDRESS", default_value_t = LimitSettings::default().per_address)]
    pub rate_limit_per_address: u32,

    /// Long-polls and event streams one credential may hold at once; 0 = no limit.
    #[arg(long, env = "LONGRUN_MAX_STREAMS", default_value_t = LimitSettings::default().streams_per_credential)]
    pub max_streams: u32,

    /// How long a request body may take to arrive once its head is in,
    /// e.g. 10s; a slower body is answered 408 and its connection closed.
    #[arg(long, env = "LONGRUN_BODY_TIMEOUT", default_value = "10s", value_parser = parse_body_timeout)]
    pub body_timeout: Duration,

    /// A trusted bearer-token issuer (repeatable; `;` between several):
    /// iss=ISSUER,aud=AUDIENCE,jwks=file:/path|https://…[,scope-claim=CLAIM][,scope-prefix=PREFIX].
    #[arg(long = "jwt-issuer", env = "LONGRUN_JWT_ISSUER", value_name = "SETTINGS",
          value_parser = IssuerConfig::parse, value_delimiter = ';')]
    pub jwt_issuers: Vec<IssuerConfig>,

    /// The audience bearer tokens must carry on the Dev Center dialect.
    #[arg(long, env = "LONGRUN_JWT_DEVCENTER_AUDIENCE", default_value = "https://devcenter.azure.com")]
    pub jwt_devcenter_audience: String,

    /// The audience bearer tokens must carry on the Sphere dialect.
    #[arg(long, env = "LONGRUN_JWT_SPHERE_AUDIENCE", default_value = "https://firstparty.sphere.azure.net/api")]
    pub jwt_sphere_audience: String,

    /// Least time between two fetches of an issuer's keys (a token naming an
    /// unknown kid triggers one), e.g. 1m.
    #[arg(long, env = "LONGRUN_JWKS_REFRESH", default_value = "1m", value_parser = parse_refresh)]
    pub jwks_refresh: Duration,

    /// Development: also trust tokens from `longrun token mint` (issuer
    /// longrun-dev, key pair in the data dir). Loopback addresses only.
    #[arg(long, env = "LONGRUN_DEV")]
    pub dev: bool,

    /// Serve HTTPS: with --tls-cert and --tls-key, their files; without,
    /// the development certificate in the data dir (made on first use;
    /// loopback addresses only; `longrun dev-cert` says how to trust it).
    #[arg(long, env = "LONGRUN_TLS")]
    pub tls: bool,

    /// The HTTPS certificate (PEM, intermediates after it); implies --tls.
    /// Re-read, with the key, on SIGHUP.
    #[arg(long, env = "LONGRUN_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(long, env = "LONGRUN_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Export traces to this OpenTelemetry collector (OTLP over
    /// HTTP/protobuf; a base URL such as http://localhost:4318, to which
    /// /v1/traces is added). Off when unset. OTEL_SERVICE_NAME,
    /// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*
    /// apply as the OpenTelemetry SDK defines them.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,
}

fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(text.to_owned()),
        Ok(_) => Err("expected an http:// or https:// URL, e.g. http://localhost:4318".into()),
        Err(e) => Err(format!("{e} (try http://localhost:4318)")),
    }
}

fn parse_refresh(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 30s or 5m)"))
}

fn parse_scope_retention(text: &str) -> Result<(Scope, Retention), String> {
    let (scope, keep) = text.split_once('=').ok_or("expected scope=finished[/failed], e.g. projects/audit=90d/180d")?;
    let (finished, failed) = keep.split_once('/').unwrap_or((keep, keep));
    Ok((Scope::parse(scope)?, Retention { finished: parse_retention(finished)?, failed: parse_retention(failed)? }))
}

fn parse_attempts(text: &str) -> Result<(Kind, u32), String> {
    let (kind, attempts) = text.split_once('=').ok_or("expected kind=attempts, e.g. deleteDevBox=5")?;
    let attempts = attempts.parse().ok().filter(|n| (1..=100).contains(n)).ok_or("attempts must be 1..=100")?;
    Ok((Kind::parse(kind)?, attempts))
}

fn parse_body_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text).map_err(|e| format!("{e} (try 10s or 1m)"))?;
    if timeout.is_zero() {
        return Err("the body timeout must be more than 0s".into());
    }
    Ok(timeout)
}

fn parse_grace(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 10s or 1m)"))
}

fn parse_window(text: &str) -> Result<Duration, String> {
    let window = humantime::parse_duration(text).map_err(|e| format!("{e} (try 5m or 1h)"))?;
    if window < crate::service::operations::MIN_REPEATABILITY_WINDOW {
        return Err(format!("{text} is below the 5m minimum of OASIS Repeatable Requests"));
    }
    Ok(window)
}

impl ServeConfig {
    /// The abuse limits this configuration asks for.
    pub fn limits(&self) -> LimitSettings {
        LimitSettings {
            per_credential: self.rate_limit,
            per_address: self.rate_limit_per_address,
            streams_per_credential: self.max_streams,
            body_timeout: self.body_timeout,
        }
    }

    /// The bearer-token issuers to trust: the configured ones, and the
    /// development issuer when `--dev` brings its key pair.
    pub fn tokens(&self, dev: Option<IssuerConfig>) -> Tokens {
        let audiences =
            Audiences { devcenter: self.jwt_devcenter_audience.clone(), sphere: self.jwt_sphere_audience.clone() };
        Tokens::new(self.jwt_issuers.iter().cloned().chain(dev).collect(), audiences, self.jwks_refresh)
    }

    /// The use-cases' policy this configuration asks for.
    pub fn policy(&self) -> Policy {
        Policy {
            repeatability_window: self.repeatability_window,
            max_attempts: self.max_attempts,
            max_attempts_by_kind: self.max_attempts_by_kind.iter().cloned().collect(),
            retention_by_scope: self.retention_by_scope.iter().cloned().collect(),
            ..Policy::new(Retention { finished: self.retention, failed: self.retention_failed })
        }
    }
}

/// Azure's guidelines require status monitors to live at least 24 hours.
const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

fn parse_retention(text: &str) -> Result<Duration, String> {
    let retention = humantime::parse_duration(text).map_err(|e| format!("{e} (try 7d or 36h)"))?;
    if retention < MIN_RETENTION {
        return Err(format!("{text} is below the 24h minimum"));
    }
    Ok(retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_below_a_day_is_refused() {
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_retention("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert!(parse_retention("23h").is_err());
        assert!(parse_retention("soon").is_err());
    }

    #[test]
    fn per_scope_retention_reads_finished_and_failed() {
        let (scope, keep) = parse_scope_retention("projects/audit=90d/180d").unwrap();
        assert_eq!(scope.to_string(), "projects/audit");
        assert_eq!((keep.finished, keep.failed), (Duration::from_secs(90 * 86_400), Duration::from_secs(180 * 86_400)));
        assert_eq!(
            parse_scope_retention("accounts/a1=2d").unwrap().1,
            Retention::uniform(Duration::from_secs(2 * 86_400))
        );
        assert!(parse_scope_retention("projects/audit=1h").is_err());
        assert!(parse_scope_retention("nowhere=2d").is_err());
    }

    #[test]
    fn describing_a_store_never_prints_its_password() {
        let config = StoreConfig {
            data_dir: "d".into(),
            url: Some("postgres://u:secret@db.example/longrun".into()),
            pool_size: 1,
        };
        assert_eq!(config.describe(), "store db.example/longrun");
    }
}
