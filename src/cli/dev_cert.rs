//! `longrun dev-cert`: makes (once) the data dir's development CA and
//! loopback certificate, and says how to serve with it and how each kind
//! of client trusts it.

use std::path::Path;

use super::failure::{Failure, config_error};
use crate::server::dev_cert;

/// Makes or finds the certificate and prints where it is and how to use it.
pub fn run(data_dir: &Path) -> Result<(), Failure> {
    let dev = dev_cert::load_or_create(data_dir).map_err(config_error)?;
    let ca = dev.ca.display();
    println!("{} the development certificate in {}:", if dev.created { "Made" } else { "Found" }, data_dir.display());
    println!("  CA (trust this)   {ca}");
    println!("  certificate       {} ({})", dev.files.cert.display(), dev_cert::NAMES.join(", "));
    println!("  private key       {}", dev.files.key.display());
    println!();
    println!("Serve HTTPS with it (loopback addresses only):");
    println!("  longrun serve --tls --data-dir {}", data_dir.display());
    println!();
    println!("Trust the CA:");
    println!("  curl            curl --cacert {ca} https://127.0.0.1:8080/healthz");
    println!("  Node.js         NODE_EXTRA_CA_CERTS={ca} node app.js");
    println!("  Python          REQUESTS_CA_BUNDLE={ca} python app.py   (requests, azure-core)");
    println!("                  SSL_CERT_FILE={ca} python app.py        (httpx, aiohttp, urllib)");
    println!("  .NET on Linux   cp {ca} /usr/local/share/ca-certificates/longrun-dev.crt && update-ca-certificates");
    println!("  .NET on Windows Import-Certificate -FilePath {ca} -CertStoreLocation Cert:\\CurrentUser\\Root");
    Ok(())
}
