//! The server span of each request while tracing is on, with the HTTP
//! semantic conventions' attributes and longrun's own (dialect, operation
//! id and scope; never a key or token), as a child of the trace context the
//! request brings. While tracing is off, a valid `traceparent` the request
//! brings is kept for the operation it may create.

use axum::extract::Request;
use axum::http::{StatusCode, Version, header};
use opentelemetry::KeyValue;

use crate::telemetry::otel::{self, RequestSpan};

/// What a request's handling runs under: its span, or (tracing off) the
/// `traceparent` it brought, or nothing.
pub enum Trace {
    /// Tracing is on: the request's server span.
    Span(RequestSpan),
    /// Tracing is off and the request brought a valid `traceparent`.
    Incoming(String),
    /// Neither.
    None,
}

/// Begins the request's span (tracing on), else notes its `traceparent`.
pub fn start(request: &Request, peer: Option<std::net::IpAddr>) -> Trace {
    let headers = request.headers();
    if !otel::enabled() {
        return match headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(otel::parse_traceparent) {
            Some(traceparent) => Trace::Incoming(traceparent),
            None => Trace::None,
        };
    }
    if otel::collector_down() {
        return Trace::Span(RequestSpan::shed(otel::parent_from(headers)));
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let method = request.method().as_str();
    let authority = request.uri().authority().cloned().or_else(|| text(header::HOST).parse().ok());
    let mut attributes = vec![
        KeyValue::new("http.request.method", static_method(method)),
        KeyValue::new("url.path", request.uri().path().to_owned()),
        KeyValue::new("network.protocol.version", protocol_version(request.version())),
    ];
    if let Some(authority) = authority {
        let host = authority.host();
        attributes.push(KeyValue::new("server.address", host.trim_start_matches('[').trim_end_matches(']').to_owned()));
    }
    if let Some(agent) = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    if let Some(peer) = peer {
        attributes.push(KeyValue::new("client.address", peer.to_string()));
    }
    Trace::Span(RequestSpan::begin(static_method(method), otel::parent_from(headers), attributes))
}

/// Names the span after its route, records how the request ended, and ends it.
pub fn finish(mut span: RequestSpan, method: &str, route: &str, status: StatusCode, dialect: &'static str) {
    let method = static_method(method);
    span.set_attributes([
        KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        KeyValue::new("longrun.dialect", dialect),
    ]);
    // Without a route, the semantic conventions name the span by the method alone.
    let name = match route {
        "unmatched" => method,
        _ => {
            let (name, route) = names(method, route);
            span.set_attributes([KeyValue::new("http.route", route)]);
            name
        }
    };
    span.end(name, status.is_server_error());
}

/// The span name (`METHOD route`) and the route as static strings: made
/// once per route template and method (a few dozen) instead of per request.
fn names(method: &'static str, route: &str) -> (&'static str, &'static str) {
    type Names = std::collections::HashMap<String, Vec<(&'static str, &'static str, &'static str)>>;
    static NAMES: std::sync::LazyLock<std::sync::RwLock<Names>> = std::sync::LazyLock::new(Default::default);
    let known = |names: &Names| {
        let by_method = names.get(route)?;
        by_method.iter().find(|(m, _, _)| *m == method).map(|&(_, name, route)| (name, route))
    };
    if let Some(found) = known(&NAMES.read().unwrap_or_else(|e| e.into_inner())) {
        return found;
    }
    let mut names = NAMES.write().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = known(&names) {
        return found;
    }
    let name: &'static str = Box::leak(format!("{method} {route}").into_boxed_str());
    let static_route = &name[method.len() + 1..];
    names.entry(route.to_owned()).or_default().push((method, name, static_route));
    (name, static_route)
}

/// The method as a static string (`_OTHER` for one outside the list, as
/// the semantic conventions say).
fn static_method(method: &str) -> &'static str {
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].into_iter().find(|m| *m == method).unwrap_or("_OTHER")
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
