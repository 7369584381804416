//! Google's REST error envelope: `{"error": {code, message, status,
//! details: [ErrorInfo]}}`, the HTTP status in `code`, the
//! `google.rpc.Code` name in `status`, longrun's code as the reason.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{code, wire};
use crate::dialect::json;
use crate::http::error::{CoreError, LoggedError, error_headers};
use crate::http::responses;
use crate::service::auth::bearer_challenge;

/// A core error rendered in Google's envelope.
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
        let (code, status) = code::of_core(&core);
        let body = wire::ErrorResponse {
            error: wire::ErrorStatus {
                code: status.as_u16(),
                message: core.public_message(),
                status: code::name(code),
                details: vec![wire::ErrorInfo::new(code::upper_snake(core.code()))],
            },
        };
        let mut headers = error_headers(&core);
        if matches!(core, CoreError::Unauthenticated { .. }) {
            headers.insert(header::WWW_AUTHENTICATE, bearer_challenge(&core));
        }
        let mut response = json(status, headers, &body);
        LoggedError::attach(&mut response, core);
        response
    }
}

/// Google's envelope, as the OpenAPI document shows it.
impl responses::Envelope for Error {
    type Body = wire::ErrorResponse;
}

/// What every Google route can answer besides its own responses.
pub type CommonErrors = responses::CommonErrors<Error>;
/// What Google routes that store something can answer too.
pub type WriteErrors = responses::WriteErrors<Error>;
