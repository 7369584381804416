//! The server span of the request being served, made with the OpenTelemetry
//! API directly rather than as a `tracing` span: a bridged span cost a
//! status GET a fifth of its throughput (registry, every layer's hooks on
//! each poll), this a few allocations. Started lazily: until something
//! needs its ids (a create storing its `traceparent`, the end), it is a
//! builder, so a claim can still make it a child of the operation it turns
//! out to serve.

use std::cell::RefCell;
use std::future::Future;
use std::time::SystemTime;

use opentelemetry::trace::{Link, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

tokio::task_local! {
    /// The span of the request whose handling is running.
    static REQUEST: RefCell<RequestSpan>;
}

/// A request's server span: a builder until started. One dropped without
/// `end` (its client went away) ends as cancelled.
pub struct RequestSpan {
    state: Option<State>,
}

enum State {
    Pending {
        builder: SpanBuilder,
        parent: Context,
    },
    Started(Context),
    /// Nothing recorded while the collector is down (`outage`): only the
    /// trace context the request brought travels on.
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
        RequestSpan { state: Some(State::Pending { builder, parent }) }
    }

    /// No span while the collector is down: what the request brought (if
    /// anything) is what its operation keeps and hands on.
    pub fn shed(parent: Context) -> RequestSpan {
        RequestSpan { state: Some(State::Shed(parent)) }
    }

    /// The span as a context (started now if it was not yet).
    pub fn context(&mut self) -> Context {
        if let Some(State::Pending { builder, parent }) = &mut self.state {
            let builder = std::mem::replace(builder, SpanBuilder::from_name(""));
            let span = super::tracer().build_with_context(builder, parent);
            self.state = Some(State::Started(parent.with_span(span)));
        }
        match &self.state {
            Some(State::Started(cx) | State::Shed(cx)) => cx.clone(),
            _ => Context::new(),
        }
    }

    /// The span context an operation created now keeps: the span's own,
    /// or, while shedding, the one the request brought.
    fn handed_on(&mut self) -> Option<SpanContext> {
        let cx = self.context();
        let span_context = cx.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    /// The span's ids for a log line, without starting it: a start fixes
    /// its parent, which a claim may still change.
    fn started_ids(&self) -> Option<SpanContext> {
        match &self.state {
            Some(State::Started(cx) | State::Shed(cx)) => {
                Some(cx.span().span_context().clone()).filter(SpanContext::is_valid)
            }
            _ => None,
        }
    }

    /// Adds attributes.
    pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        match &mut self.state {
            Some(State::Pending { builder, .. }) => builder.attributes.get_or_insert_with(Vec::new).extend(attributes),
            Some(State::Started(cx)) => cx.span().set_attributes(attributes),
            _ => {}
        }
    }

    /// Makes the span a child of `cx` if it has not started and the request
    /// brought no valid trace context of its own, else links it to `cx`.
    fn join(&mut self, cx: &Context) {
        let linked = cx.span().span_context().clone();
        match &mut self.state {
            Some(State::Pending { parent, .. }) if !parent.span().span_context().is_valid() => *parent = cx.clone(),
            Some(State::Pending { builder, .. }) => {
                builder.links.get_or_insert_with(Vec::new).push(Link::with_context(linked))
            }
            Some(State::Started(started)) => started.span().add_link(linked, Vec::new()),
            _ => {}
        }
    }

    /// Names the span, marks a server error, and ends it.
    pub fn end(mut self, name: &'static str, server_error: bool) {
        match &mut self.state {
            Some(State::Shed(_)) => {
                self.state = None;
                return super::export::dropped(1);
            }
            Some(State::Pending { builder, .. }) => builder.name = name.into(),
            Some(State::Started(cx)) => cx.span().update_name(name),
            None => return,
        }
        let cx = self.context();
        if server_error {
            cx.span().set_status(Status::error(""));
        }
        cx.span().end();
        self.state = None;
    }
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        if self.state.is_none() {
            return;
        }
        if let Some(State::Shed(_)) = self.state {
            return super::export::dropped(1);
        }
        self.set_attributes([KeyValue::new("longrun.cancelled", true)]);
        self.context().span().end();
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
pub fn join_operation_trace(traceparent: Option<&str>) {
    if !super::enabled() {
        return;
    }
    if let Some(cx) = traceparent.and_then(super::context_of) {
        with_request(|span| span.join(&cx));
    }
}

/// The span context an operation created by the request being served keeps.
pub fn handed_on() -> Option<SpanContext> {
    if !super::enabled() {
        return None;
    }
    with_request(RequestSpan::handed_on).flatten()
}

/// The ids of the request's span for a log line, if it has started.
pub fn started_ids() -> Option<SpanContext> {
    if !super::enabled() {
        return None;
    }
    with_request(|span| span.started_ids()).flatten()
}
