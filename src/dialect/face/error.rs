//! Face's `APIError` envelope. A 401 is worded exactly as Azure's API gateway
//! words it for Cognitive Services keys: people search for that sentence.

use axum::response::{IntoResponse, Response};

use super::wire;
use crate::dialect::json;
use crate::http::error::{CoreError, LoggedError, error_headers};
use crate::http::responses;

const GATEWAY_401: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a \
     valid key for an active subscription and use a correct regional API endpoint for your resource.";

/// A core error rendered as a Face `APIError`.
#[derive(Debug)]
pub struct Error(pub CoreError);

impl From<CoreError> for Error {
    fn from(core: CoreError) -> Error {
        Error(core)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let core = self.0;
        let (code, message) = match &core {
            CoreError::Unauthenticated { .. } => ("401".to_owned(), GATEWAY_401.to_owned()),
            CoreError::BadRequest { .. } => ("BadArgument".to_owned(), core.public_message()),
            other => (other.code().to_owned(), other.public_message()),
        };
        let headers = error_headers(&core);
        let body = wire::ApiError { error: wire::Error { code, message } };
        let mut response = json(core.status(), headers, &body);
        LoggedError::attach(&mut response, core);
        response
    }
}

/// Face's envelope, as the OpenAPI document shows it (a 401 has no
/// `WWW-Authenticate`: the key is not a bearer token).
impl responses::Envelope for Error {
    type Body = wire::ApiError;
    const CHALLENGE: bool = false;
}

/// What every Face route can answer besides its own responses.
pub type CommonErrors = responses::CommonErrors<Error>;
/// What Face routes that store something can answer too.
pub type WriteErrors = responses::WriteErrors<Error>;
/// What Face routes with a JSON body can answer too.
pub type BodyErrors = responses::BodyErrors<Error>;
