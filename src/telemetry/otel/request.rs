//! The server span of the request being served, made with the OpenTelemetry
//! API directly rather than as a `tracing` span: a bridged span cost a
//! status GET a fifth of its throughput (registry, every layer's hooks on
//! each poll), this a few allocations. Started lazily: until something
//! needs its ids (a create storing its `traceparent`, a log line, the end),
//! it is a builder, so a claim can still make it a child of the operation
//! it turns out to serve.

use std::cell::RefCell;
use std::future::Future;
use std::time::SystemTime;

use opentelemetry::trace::{
    Link, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, Tracer,
};
use opentelemetry::{Context, KeyValue};

tokio::task_local! {
    /// The span of the request whose handling is running.
    static REQUEST: RefCell<RequestSpan>;
}

/// A request's server span: a builder until started.
pub struct RequestSpan {
    state: State,
}

enum State {
    Pending {
        builder: SpanBuilder,
        parent: Context,
    },
    Started(Context),
    /// Ids only, nothing recorded: the collector is down (`outage`).
    Shed(Context),
}

impl RequestSpan {
    /// A server span named `name` (until it is named after its route), a
    /// child of `parent` (the trace context the request brought, if any).
    pub fn begin(name: &'static str, parent: Context, attributes: Vec<KeyValue>) -> RequestSpan {
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .with_start_time(SystemTime::now())
            .with_attributes(attributes);
        RequestSpan { state: State::Pending { builder, parent } }
    }

    /// A span that only has ids (in `parent`'s trace, if any), for while the
    /// collector is down: trace context still travels, nothing is recorded.
    pub fn shed(parent: Context) -> RequestSpan {
        let parent_span = parent.span().span_context().clone();
        let trace_id = match parent_span.is_valid() {
            true => parent_span.trace_id(),
            false => TraceId::from(rand::random::<u128>().max(1)),
        };
        let flags = if parent_span.is_valid() { parent_span.trace_flags() } else { TraceFlags::SAMPLED };
        let span_id = SpanId::from(rand::random::<u64>().max(1));
        let own = SpanContext::new(trace_id, span_id, flags, false, parent_span.trace_state().clone());
        RequestSpan { state: State::Shed(parent.with_remote_span_context(own)) }
    }

    /// The span as a context (started now if it was not yet).
    pub fn context(&mut self) -> Context {
        if let State::Pending { builder, parent } = &mut self.state {
            let builder = std::mem::replace(builder, SpanBuilder::from_name(""));
            let span = super::tracer().build_with_context(builder, parent);
            self.state = State::Started(parent.with_span(span));
        }
        match &self.state {
            State::Started(cx) | State::Shed(cx) => cx.clone(),
            State::Pending { .. } => unreachable!("started above"),
        }
    }

    /// Adds attributes.
    pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        match &mut self.state {
            State::Pending { builder, .. } => builder.attributes.get_or_insert_with(Vec::new).extend(attributes),
            State::Started(cx) => cx.span().set_attributes(attributes),
            State::Shed(_) => {}
        }
    }

    /// Makes the span a child of `cx` if it has not started (and the
    /// request brought no context of its own), else links it to `cx`.
    fn join(&mut self, cx: &Context, request_brought_one: bool) {
        let linked = cx.span().span_context().clone();
        match &mut self.state {
            State::Pending { parent, .. } if !request_brought_one => *parent = cx.clone(),
            State::Pending { builder, .. } => {
                builder.links.get_or_insert_with(Vec::new).push(Link::with_context(linked))
            }
            State::Started(started) => started.span().add_link(linked, Vec::new()),
            State::Shed(_) => {}
        }
    }

    /// Names the span, marks a server error, and ends it.
    pub fn end(mut self, name: &'static str, server_error: bool) {
        if let State::Shed(_) = self.state {
            return super::export::dropped(1);
        }
        if let State::Pending { builder, .. } = &mut self.state {
            builder.name = name.into();
        } else if let State::Started(cx) = &self.state {
            cx.span().update_name(name);
        }
        let cx = self.context();
        if server_error {
            cx.span().set_status(Status::error(""));
        }
        cx.span().end();
    }
}

/// Runs `work` (a request's handling) with `span` as its request span;
/// returns the span back with the outcome.
pub async fn serving<F: Future>(span: RequestSpan, work: F) -> (F::Output, RequestSpan) {
    let mut scoped = std::pin::pin!(REQUEST.scope(RefCell::new(span), work));
    let outcome = scoped.as_mut().await;
    let span = scoped.take_value().expect("the scope's value is taken once").into_inner();
    (outcome, span)
}

/// Runs `f` on the span of the request being served, if any.
pub fn with_request<T>(f: impl FnOnce(&mut RequestSpan) -> T) -> Option<T> {
    REQUEST.try_with(|span| span.try_borrow_mut().ok().map(|mut span| f(&mut span))).ok().flatten()
}

/// Joins the request's span to the trace of the operation it turned out to
/// serve (a claim learns which only once it has it): as a child when the
/// request brought no trace context of its own, else by a link, so the
/// worker's own trace stays whole.
pub fn join_operation_trace(traceparent: Option<&str>, request_brought_one: bool) {
    if !super::enabled() {
        return;
    }
    if let Some(cx) = traceparent.and_then(super::context_of) {
        with_request(|span| span.join(&cx, request_brought_one));
    }
}

/// The span context of the request being served, if tracing is on.
pub fn request_span_context() -> Option<SpanContext> {
    if !super::enabled() {
        return None;
    }
    with_request(|span| span.context().span().span_context().clone())
}
