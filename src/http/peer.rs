//! The client address of a request: the accept loop records it on every
//! request it hands on; limits and the access log read it.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

/// The peer of the request being served (set for every request by the
/// accept loop).
pub fn peer_of<B>(request: &axum::http::Request<B>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
