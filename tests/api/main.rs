//! Black-box tests: the real server on 127.0.0.1:0 with a temporary SQLite
//! data dir, spoken to over HTTP. One binary, one module per front-end.

mod binary;
mod config;
mod devcenter;
mod events;
mod face;
mod helpers;
mod initiators;
mod leases;
mod longpoll;
mod native;
mod nodes;
mod operator;
mod outage;
mod repeatability;
mod restart;
mod retention;
mod sphere;
mod tokens;
mod webhooks;
