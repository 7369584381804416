//! Sphere's error envelope: a JSON array of RFC 7807 `PublicApiErrorDetails`,
//! served as `application/problem+json`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::wire::PublicApiErrorDetails;
use crate::dialect::json_as;
use crate::http::error::{CoreError, LoggedError, error_headers};
use crate::http::responses;
use crate::service::auth::bearer_challenge;

/// A core error plus the path it happened on (RFC 7807 `Instance`).
#[derive(Debug)]
pub struct Error {
    core: CoreError,
    instance: String,
}

impl Error {
    /// Wraps `core` for the request at `path`.
    pub fn at(path: &str) -> impl FnOnce(CoreError) -> Error + '_ {
        move |core| Error { core, instance: path.to_owned() }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.core.status();
        let detail = match &self.core {
            CoreError::NoSuchOperation { id } => format!("No operation {id} in this tenant."),
            other => other.public_message(),
        };
        let body = [PublicApiErrorDetails {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            instance: self.instance,
            error_code: self.core.code().into(),
            extensions: Default::default(),
        }];
        let mut headers = error_headers(&self.core);
        if matches!(self.core, CoreError::Unauthenticated { .. }) {
            headers.insert(header::WWW_AUTHENTICATE, bearer_challenge(&self.core));
        }
        let mut response = json_as(status, headers, &body, "application/problem+json; charset=utf-8");
        LoggedError::attach(&mut response, self.core);
        response
    }
}

/// Sphere's envelope, as the OpenAPI document shows it: an array of one.
impl responses::Envelope for Error {
    type Body = PublicApiErrorDetails;
    const ARRAY: bool = true;
    const CONTENT_TYPE: &'static str = "application/problem+json";
}

/// What every Sphere route can answer besides its own responses.
pub type CommonErrors = responses::CommonErrors<Error>;
/// What Sphere routes that store something can answer too.
pub type WriteErrors = responses::WriteErrors<Error>;
