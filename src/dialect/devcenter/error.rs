//! Azure.Core's error envelope, with the code also in `x-ms-error-code`.
//! The native `/v1` API speaks the same envelope and reuses this.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::wire;
use crate::dialect::json;
use crate::http::error::{CoreError, LoggedError, error_headers};
use crate::http::responses;
use crate::service::auth::bearer_challenge;

/// A core error rendered as an Azure.Core `ErrorResponse`.
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
        let code = core.code();
        let body = wire::ErrorResponse {
            error: wire::Error {
                code: code.into(),
                message: core.public_message(),
                target: core.target().map(str::to_owned),
                details: None,
            },
        };
        let mut headers = error_headers(&core);
        headers.insert("x-ms-error-code", HeaderValue::from_static(code));
        if matches!(core, CoreError::Unauthenticated { .. }) {
            headers.insert(header::WWW_AUTHENTICATE, bearer_challenge(&core));
        }
        let mut response = json(core.status(), headers, &body);
        LoggedError::attach(&mut response, core);
        response
    }
}

/// Azure.Core's envelope, as the OpenAPI document shows it.
impl responses::Envelope for Error {
    type Body = wire::ErrorResponse;
    const ERROR_CODE_HEADER: bool = true;
}

/// What every Dev Center (and native) route can answer besides its own responses.
pub type CommonErrors = responses::CommonErrors<Error>;
/// What Dev Center (and native) routes that store something can answer too.
pub type WriteErrors = responses::WriteErrors<Error>;
