//! google.longrunning.Operations over gRPC (`--grpc-listen`): the service
//! the unchanged google-api-core `OperationsClient` and its futures call,
//! answering as the REST mapping does. Auth is the `authorization:
//! Bearer …` metadata, exactly as over HTTP.

mod convert;
#[allow(missing_docs, dead_code, clippy::all)]
mod generated;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use tonic::{Request, Response, Status};

use self::generated::operations_server::{Operations, OperationsServer};
use self::generated::{
    CancelOperationRequest, DeleteOperationRequest, GetOperationRequest, ListOperationsRequest, ListOperationsResponse,
    Operation as ProtoOperation, WaitOperationRequest,
};
use super::{ListRequest, list, parse_name, parse_scope};
use crate::http::error::CoreError;
use crate::service::auth::Principal;
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;
use crate::service::watch;

/// The Operations service of one node.
pub struct Service {
    app: AppState,
}

/// WaitOperation's request path: a call held open, as a long-poll is.
pub const WAIT_METHOD: &str = "/google.longrunning.Operations/WaitOperation";

/// The methods of google.longrunning.Operations, as request paths.
const METHODS: [&str; 5] = [
    "/google.longrunning.Operations/GetOperation",
    "/google.longrunning.Operations/ListOperations",
    "/google.longrunning.Operations/CancelOperation",
    "/google.longrunning.Operations/DeleteOperation",
    WAIT_METHOD,
];

/// The largest request message decoded: names and filters are short, so
/// a bigger message is refused before it is buffered.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The gRPC listener's routes: each method by its path (so metrics and the
/// access log name it), anything else UNIMPLEMENTED. Served by the same
/// accept loop and front middleware as HTTP: TLS, head limits, rate
/// limits and the access log apply alike.
pub fn router(app: AppState) -> Router {
    let service = OperationsServer::new(Service { app }).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let routed = METHODS.iter().fold(Router::new(), |router, path| router.route_service(path, service.clone()));
    routed.fallback(unknown_method)
}

/// Whether `path` is one of the gRPC methods' (`/google.longrunning.Operations/…`).
pub fn owns_path(path: &str) -> bool {
    path.starts_with("/google.longrunning.Operations/")
}

/// `core` as a gRPC answer: a trailers-only response carrying the status.
pub fn error_response(_path: &str, core: CoreError) -> axum::response::Response {
    convert::status(core).into_http::<axum::body::Body>().into_response()
}

/// The HTTP status Google's mapping gives a gRPC answer's status, when the
/// answer is a refusal (its `grpc-status` is in the head): what the access
/// log, the audit log and the metrics record for it.
pub fn http_equivalent(headers: &HeaderMap) -> Option<StatusCode> {
    let code: i32 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    (code != 0).then(|| super::code::http_status(code))
}

/// A method the service lacks is UNIMPLEMENTED, as gRPC servers answer it.
async fn unknown_method(request: axum::extract::Request) -> axum::response::Response {
    let message = format!("longrun does not serve the method {}", request.uri().path());
    Status::unimplemented(message).into_http::<axum::body::Body>().into_response()
}

impl Service {
    async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let headers = request.metadata().clone().into_headers();
        self.app.bearer_caller(&headers, Front::Native).await.map_err(convert::status)
    }
}

#[tonic::async_trait]
impl Operations for Service {
    async fn list_operations(
        &self,
        request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let body = request.into_inner();
        let scope = parse_scope(&body.name).map_err(convert::status)?;
        let asked = ListRequest { filter: body.filter, page_size: body.page_size.into(), page_token: body.page_token };
        let (page, next_page_token) = list(&self.app, &caller, scope, &asked).await.map_err(convert::status)?;
        let operations = page.iter().map(convert::operation).collect();
        Ok(Response::new(ListOperationsResponse { operations, next_page_token, unreachable: Vec::new() }))
    }

    async fn get_operation(&self, request: Request<GetOperationRequest>) -> Result<Response<ProtoOperation>, Status> {
        let caller = self.caller(&request).await?;
        let (scope, id) = parse_name(&request.get_ref().name).map_err(convert::status)?;
        let op = super::get(&self.app, &caller, &scope, id).await.map_err(convert::status)?;
        Ok(Response::new(convert::operation(&op)))
    }

    async fn delete_operation(&self, request: Request<DeleteOperationRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request).await?;
        let (scope, id) = parse_name(&request.get_ref().name).map_err(convert::status)?;
        super::delete(&self.app, &caller, &scope, id).await.map_err(convert::status)?;
        Ok(Response::new(()))
    }

    async fn cancel_operation(&self, request: Request<CancelOperationRequest>) -> Result<Response<()>, Status> {
        let caller = self.caller(&request).await?;
        let (scope, id) = parse_name(&request.get_ref().name).map_err(convert::status)?;
        super::cancel(&self.app, &caller, &scope, id).await.map_err(convert::status)?;
        Ok(Response::new(()))
    }

    async fn wait_operation(&self, request: Request<WaitOperationRequest>) -> Result<Response<ProtoOperation>, Status> {
        let caller = self.caller(&request).await?;
        let deadline = grpc_timeout(request.metadata());
        let body = request.into_inner();
        let (scope, id) = parse_name(&body.name).map_err(convert::status)?;
        let asked = match body.timeout {
            Some(t) if t.seconds < 0 || t.nanos < 0 => {
                let bad = CoreError::bad_request("InvalidArgument", "timeout", "the timeout must not be negative");
                return Err(convert::status(bad));
            }
            Some(t) => Duration::new(t.seconds as u64, t.nanos as u32),
            None => watch::DEFAULT_WAIT,
        };
        // Answer a little before the caller's deadline, so it gets the latest state instead of DEADLINE_EXCEEDED.
        let up_to = deadline.map_or(asked, |d| asked.min(d.saturating_sub(Duration::from_millis(100))));
        let op = super::wait(&self.app, &caller, &scope, id, up_to).await.map_err(convert::status)?;
        Ok(Response::new(convert::operation(&op)))
    }
}

/// The call's deadline from its `grpc-timeout` header (`30S`, `500m`, …).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_grpc_timeout_header_in_each_unit() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(grpc_timeout(&metadata), None);
        for (value, expected) in [
            ("30S", Duration::from_secs(30)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ] {
            metadata.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), Some(expected), "{value}");
        }
        metadata.insert("grpc-timeout", "soon".parse().unwrap());
        assert_eq!(grpc_timeout(&metadata), None);
    }
}
