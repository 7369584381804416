//! The shared HTTP vocabulary every front-end speaks: the error they share,
//! request headers and bodies, who the caller is, and the error responses
//! the OpenAPI document shows.

pub mod body;
pub mod bounds;
pub mod caller;
pub mod error;
pub mod headers;
pub mod peer;
pub mod responses;
