//! Configuration: flags, each with a `LONGRUN_*` environment variable, and
//! defaults that work with no configuration at all. Doc comments are --help.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the embedded store keeps its file.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Directory for longrun's data (the SQLite file lives here).
    #[arg(
        long = "data-dir",
        env = "LONGRUN_DATA_DIR",
        default_value = "./longrun-data"
    )]
    pub path: PathBuf,
}

/// `longrun serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "LONGRUN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub data_dir: DataDir,

    /// Seconds pollers are told to wait between polls (Retry-After), 1..=3600.
    #[arg(long, env = "LONGRUN_RETRY_AFTER", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub retry_after: u32,

    /// How long finished operations are kept, e.g. 7d or 36h (at least 24h).
    #[arg(long, env = "LONGRUN_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub retention: Duration,
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
}
