//! `longrun serve`: checks the configuration, opens the store, says what it
//! trusts and where it listens, then runs the node until a signal.

use std::sync::Arc;

use super::config::ServeConfig;
use super::failure::{Failure, config_error, runtime_error};
use crate::server::application::{Application, Parts};
use crate::server::dev_cert;
use crate::server::tls::{Tls, TlsFiles};
use crate::service::auth::dev::{self, DevKey};
use crate::store::sqlite;

/// Serves until SIGINT or SIGTERM.
pub async fn run(config: ServeConfig) -> Result<(), Failure> {
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
    if config.demo && !config.listen.ip().is_loopback() && !config.demo_public {
        return Err(config_error(format!(
            "--demo prints a read key for every scope: listen on a loopback address, or add --demo-public \
             to serve the demo on {}",
            config.listen
        )));
    }
    let tls = tls(&config)?;
    let _serving = match config.store.sqlite_dir() {
        Some(dir) => Some(sqlite::claim_for_serving(&dir).map_err(config_error)?),
        None => None,
    };
    let store = config.store.open().await.map_err(config_error)?;
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
    let tokens = config.tokens(dev.map(|key| key.issuer()));
    let issuers: Vec<&str> = tokens.issuers().collect();
    if !issuers.is_empty() {
        println!("trusting bearer tokens of: {}", issuers.join(", "));
    }
    let policy = Arc::new(config.policy());
    let parts = Parts {
        store: store.clone(),
        policy: policy.clone(),
        tokens,
        retry_after: config.retry_after,
        demo: config.demo,
        limits: config.limits(),
        grace: config.shutdown_grace,
        tls: tls.clone(),
        grpc_listen: config.grpc_listen,
    };
    let node = Application::bind(config.listen, parts)
        .await
        .map_err(|e| config_error(format!("cannot listen on {}: {e}", config.listen)))?;
    let address = node.address().map_err(config_error)?;
    let shutdown = shutdown_signal();
    let base = format!("{}://{}", node.scheme(), connectable(address));
    let every = if address.ip().is_unspecified() { format!(", every interface: {address}") } else { String::new() };
    println!("longrun listening on {base} ({}{every})", config.store.describe());
    if let Some(grpc) = node.grpc_address() {
        println!("longrun gRPC listening on {}", connectable(grpc));
    }
    if let Some(tls) = tls {
        tokio::spawn(tls.reload_on_hangup());
    }
    if config.demo {
        let seeded =
            super::demo::seed(store.as_ref(), &policy, &base, &config.store.data_dir).await.map_err(runtime_error)?;
        println!("demo mode: scripted operations to poll (they finish in 20 s) with the read key {}", seeded.key);
        for (dialect, url) in seeded.urls {
            println!("  {dialect:<13} {url}");
        }
        println!("  (Face takes the key as Ocp-Apim-Subscription-Key; the others as Authorization: Bearer)");
    }
    node.run_until(shutdown).await.map_err(|e| runtime_error(format!("server failed: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// An address this machine's clients can connect to: `0.0.0.0` and `::`
/// listen everywhere but are no place to connect to, so loopback stands in.
fn connectable(address: std::net::SocketAddr) -> std::net::SocketAddr {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => (std::net::Ipv4Addr::LOCALHOST, address.port()).into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// The certificate to serve HTTPS with, if any: the files given, or the
/// data dir's development certificate (loopback addresses only: it is for
/// this machine's clients, who trust its CA).
fn tls(config: &ServeConfig) -> Result<Option<Arc<Tls>>, Failure> {
    let files = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => TlsFiles { cert: cert.clone(), key: key.clone() },
        _ if !config.tls => return Ok(None),
        _ if !config.listen.ip().is_loopback() => {
            return Err(config_error(format!(
                "--tls without --tls-cert and --tls-key serves the development certificate, made for \
                 localhost only: give a certificate for {}",
                config.listen
            )));
        }
        _ => {
            let dev = dev_cert::load_or_create(&config.store.data_dir).map_err(config_error)?;
            println!(
                "serving the development certificate {} ({}); clients trust its CA {} (`longrun dev-cert` says how)",
                dev.files.cert.display(),
                dev_cert::NAMES.join(", "),
                dev.ca.display()
            );
            dev.files
        }
    };
    Tls::load(files).map(|tls| Some(Arc::new(tls))).map_err(|e| config_error(format!("{e:#}")))
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

#[cfg(test)]
mod tests {
    use super::connectable;

    #[test]
    fn addresses_that_listen_everywhere_are_reached_through_loopback() {
        let reach = |listen: &str| connectable(listen.parse().unwrap()).to_string();
        assert_eq!(reach("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(reach("[::]:8080"), "[::1]:8080");
        assert_eq!(reach("10.1.2.3:8080"), "10.1.2.3:8080");
    }
}
