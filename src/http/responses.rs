//! The error responses routes share, documented once and composed into each
//! route's `responses(...)`: what the front (`server::accept`, `server::front`)
//! answers on any route before or around its handler, and what the store
//! answers on every route that reads or writes it. Generic over a dialect's
//! envelope; documentation only: `dialect::*::error` decides what is sent.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

use crate::http::body::MAX_BODY_BYTES;
use crate::http::bounds::{HYPER_HEAD_BYTES, MAX_HEAD_BYTES, STREAM_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER};

/// How a dialect renders a `CoreError`, as the document shows it.
pub trait Envelope {
    /// The type of an error body (its schema must be registered).
    type Body: ToSchema;
    /// Whether a body is a JSON array of them (Sphere) rather than one.
    const ARRAY: bool = false;
    /// The media type of an error body.
    const CONTENT_TYPE: &'static str = "application/json";
    /// Whether the error code is repeated in `x-ms-error-code` (Azure.Core).
    const ERROR_CODE_HEADER: bool = false;
    /// Whether a 401 carries a `WWW-Authenticate: Bearer` challenge.
    const CHALLENGE: bool = true;
}

/// What the front can answer on any route, whatever the handler: 429
/// (limits), 431 (head too large) and 500 (a panic or internal error).
pub struct FrontErrors<E>(PhantomData<E>);

/// What every authenticated route can answer: `FrontErrors`, 401 and 503
/// (the store, which holds the keys, is unavailable).
pub struct CommonErrors<E>(PhantomData<E>);

/// What a route that stores something can answer too: 507.
pub struct WriteErrors<E>(PhantomData<E>);

/// What a route that reads a request body can answer too: 413 over `LIMIT`
/// bytes, 408 when the body comes too slowly.
pub struct BodyErrors<E, const LIMIT: usize = MAX_BODY_BYTES>(PhantomData<E>);

type Responses = BTreeMap<String, RefOr<Response>>;

impl<E: Envelope> IntoResponses for FrontErrors<E> {
    fn responses() -> Responses {
        let too_many = format!(
            "Too many requests: the credential's or the client address's rate limit, or the credential's \
             limit of held long-polls and event streams, is reached. Refused before any work; Retry-After \
             says when a retry can succeed (at least 1 s; {} s for a held stream). TooManyRequests.",
            STREAM_RETRY_AFTER.as_secs()
        );
        let head = format!(
            "The request head (request line and headers) is larger than {} (RequestHeaderFieldsTooLarge), \
             refused before routing. A head over {} is refused by the HTTP layer itself: no body, no \
             x-ms-request-id, and over HTTP/1.1 the connection is closed.",
            size(MAX_HEAD_BYTES),
            size(HYPER_HEAD_BYTES)
        );
        let internal = "An internal error (a bug, a failed dependency, a handler that panicked): \
            InternalServerError with a generic message; the details are logged under the x-ms-request-id.";
        BTreeMap::from([
            ("429".into(), error::<E>(&too_many, true).into()),
            ("431".into(), error::<E>(&head, false).into()),
            ("500".into(), error::<E>(internal, false).into()),
        ])
    }
}

impl<E: Envelope> IntoResponses for CommonErrors<E> {
    fn responses() -> Responses {
        let mut unauthenticated = error::<E>("Missing or invalid credentials", false);
        if E::CHALLENGE {
            unauthenticated.headers.insert(
                "WWW-Authenticate".into(),
                header(Type::String, "Bearer realm=\"longrun\", error=\"invalid_token\", error_description=…"),
            );
        }
        let unavailable =
            format!("Storage unavailable (ServiceUnavailable); retry after Retry-After ({UNAVAILABLE_RETRY_AFTER} s)");
        let mut responses = FrontErrors::<E>::responses();
        responses.insert("401".into(), unauthenticated.into());
        responses.insert("503".into(), error::<E>(&unavailable, true).into());
        responses
    }
}

impl<E: Envelope> IntoResponses for WriteErrors<E> {
    fn responses() -> Responses {
        let full = format!(
            "The disk under the store is full (InsufficientStorage): writes are refused until space returns, \
             reads still work; retry after Retry-After ({UNAVAILABLE_RETRY_AFTER} s)"
        );
        BTreeMap::from([("507".into(), error::<E>(&full, true).into())])
    }
}

impl<E: Envelope, const LIMIT: usize> IntoResponses for BodyErrors<E, LIMIT> {
    fn responses() -> Responses {
        let too_large = format!(
            "The request body is larger than {} (RequestBodyTooLarge), by its Content-Length (refused before \
             any of it is read) or as it arrives; over HTTP/1.1 the connection is then closed",
            size(LIMIT)
        );
        let too_slow = "The request body did not arrive in full within the body timeout (--body-timeout, \
            10 s by default) after its head (RequestTimeout); over HTTP/1.1 the connection is then closed";
        BTreeMap::from([
            ("408".into(), error::<E>(too_slow, false).into()),
            ("413".into(), error::<E>(&too_large, false).into()),
        ])
    }
}

/// An error in `E`'s envelope, with the headers every enveloped error has
/// (and `Retry-After` when `retry` is set).
fn error<E: Envelope>(description: &str, retry: bool) -> Response {
    let body = Ref::from_schema_name(E::Body::name());
    let schema: RefOr<Schema> = if E::ARRAY { ArrayBuilder::new().items(body).into() } else { body.into() };
    let content = ContentBuilder::new().schema(Some(schema)).build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(E::CONTENT_TYPE, content)
        .header("x-ms-request-id", header(Type::String, "The request's id, also in the server's log"))
        .build();
    if E::ERROR_CODE_HEADER {
        response.headers.insert("x-ms-error-code".into(), header(Type::String, "The error code of the body"));
    }
    if retry {
        response.headers.insert("Retry-After".into(), header(Type::Integer, "Seconds to wait before retrying"));
    }
    response
}

fn header(kind: Type, description: &str) -> Header {
    HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(kind)).description(Some(description)).build()
}

/// `bytes` as people write it: 16 KiB, 512 MiB.
fn size(bytes: usize) -> String {
    match bytes {
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}
