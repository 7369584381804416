//! Black-box tests: the real server on 127.0.0.1:0 with a temporary SQLite
//! data dir, spoken to over HTTP. One binary, one module per front-end.

mod backup;
mod binary;
mod config;
mod crash;
mod devcenter;
mod emulator;
mod events;
mod face;
mod failover;
mod fixtures;
mod full_disk;
mod google;
mod helpers;
mod hostile;
mod http_edges;
mod idle;
mod initiators;
mod integrity;
mod isolation;
mod keys;
mod leases;
mod load;
mod longpoll;
mod native;
mod nodes;
mod operator;
mod outage;
mod repeatability;
mod restart;
mod retention;
mod shutdown;
mod sphere;
mod tls;
mod tokens;
mod webhooks;
