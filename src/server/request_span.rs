//! The server span of each request while tracing is on, with the HTTP
//! semantic conventions' attributes and longrun's own (dialect, operation
//! id and scope; never a key or token), as a child of the trace context the
//! request brings. While tracing is off, a valid `traceparent` the request
//! brings is kept for the operation it may create.

use axum::extract::Request;
use axum::http::{StatusCode, Version, header};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::otel;

/// What a request's handling runs under: its span, or (tracing off) the
/// `traceparent` it brought, or nothing.
pub enum Trace {
    /// Tracing is on: the request's server span.
    Span(Span),
    /// Tracing is off and the request brought a valid `traceparent`.
    Incoming(String),
    /// Neither.
    None,
}

impl Trace {
    /// The span, if tracing is on.
    pub fn span(&self) -> Option<&Span> {
        match self {
            Trace::Span(span) => Some(span),
            _ => None,
        }
    }
}

/// Starts the request's span (tracing on), else notes its `traceparent`.
pub fn start(request: &Request, peer: Option<std::net::IpAddr>) -> Trace {
    let headers = request.headers();
    if !otel::enabled() {
        return match headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(otel::parse_traceparent) {
            Some(traceparent) => Trace::Incoming(traceparent),
            None => Trace::None,
        };
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let method = request.method().as_str();
    let host = request.uri().host().unwrap_or_else(|| text(header::HOST));
    let server_address = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let span = tracing::info_span!(
        target: "longrun::span",
        "request",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = request.uri().path(),
        server.address = server_address,
        client.address = peer.map(|ip| ip.to_string()),
        network.protocol.version = protocol_version(request.version()),
        user_agent.original = text(header::USER_AGENT),
        longrun.dialect = Empty,
        longrun.operation.id = Empty,
        longrun.scope = Empty,
    );
    otel::with_parent_from(&span, headers);
    Trace::Span(span)
}

/// Names the span after its route and records how the request ended.
pub fn finish(span: &Span, method: &str, route: &str, status: StatusCode, dialect: &str) {
    // Through the OpenTelemetry span itself: a span already started (one
    // whose context was handed on) takes no new name from a record.
    span.context().span().update_name(format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", i64::from(status.as_u16()));
    span.record("longrun.dialect", dialect);
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
