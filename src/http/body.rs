//! Request bodies, read only when a handler asks: after it has checked the
//! caller's credential and role, on a deadline, into one buffer no larger
//! than the body's declared length (or the limit). A client without a key
//! that trickles a body therefore costs its head and nothing more, and an
//! authenticated one costs its body plus a small constant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::http::error::CoreError;

/// Largest JSON request body accepted (create and PATCH bodies are small).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Parses a JSON body already read, naming what is wrong with it in a 400
/// with the dialect's `code`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], code: &'static str) -> Result<T, CoreError> {
    serde_json::from_slice(bytes).map_err(|e| CoreError::BadRequest {
        code,
        message: format!("The request body is not valid: {e}"),
        target: None,
    })
}

/// How a request's body may be read, set by the front middleware when the
/// head arrives: when the whole body must be in, and a flag it raises once
/// the body has been read to its end (an HTTP/1.1 answer to a request whose
/// body was left unread closes the connection).
#[derive(Clone, Debug)]
pub struct BodyTerms {
    /// When the last byte must have arrived.
    deadline: Instant,
    /// How long the client was given, for the 408's message.
    timeout: Duration,
    read_whole: Arc<AtomicBool>,
}

impl BodyTerms {
    /// Terms for a body due `timeout` after `head_read`, not yet read.
    pub fn new(head_read: Instant, timeout: Duration) -> BodyTerms {
        BodyTerms { deadline: head_read + timeout, timeout, read_whole: Arc::new(AtomicBool::new(false)) }
    }

    /// True once a handler has read the body to its end.
    pub fn was_read_whole(&self) -> bool {
        self.read_whole.load(Ordering::Relaxed)
    }
}

/// A request body not read yet. As a `FromRequest` extractor it must come
/// last; it reads nothing until `read` or `count` is called, so a handler
/// refuses a caller (401, 403) without waiting for a byte of the body.
pub struct UnreadBody {
    body: Body,
    declared: Option<u64>,
    terms: Option<BodyTerms>,
}

impl<S: Sync> FromRequest<S> for UnreadBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok())
            .and_then(|length| length.parse().ok());
        let terms = request.extensions().get::<BodyTerms>().cloned();
        Ok(UnreadBody { body: request.into_body(), declared, terms })
    }
}

impl UnreadBody {
    /// The whole body, at most `MAX_BODY_BYTES`.
    pub async fn read(self) -> Result<Bytes, CoreError> {
        self.read_at_most(MAX_BODY_BYTES).await
    }

    /// The whole body parsed as JSON; a body that is not the JSON expected is
    /// a 400 with the dialect's `code`.
    pub async fn read_json<T: DeserializeOwned>(self, code: &'static str) -> Result<T, CoreError> {
        parse_json(&self.read().await?, code)
    }

    /// The whole body, at most `limit` bytes, in one buffer (sized by the
    /// declared length; a chunked body grows it as it comes): each chunk is
    /// copied and dropped at once, since a chunk of a few bytes can keep a
    /// connection's whole read buffer alive.
    pub async fn read_at_most(self, limit: usize) -> Result<Bytes, CoreError> {
        let expected = self.expected_length(limit)?;
        let mut whole = Vec::with_capacity(expected.unwrap_or(0));
        self.each_chunk(limit, |chunk| whole.extend_from_slice(&chunk)).await?;
        Ok(Bytes::from(whole))
    }

    /// Reads the body to its end, keeping nothing; returns its length.
    pub async fn count(self, limit: usize) -> Result<usize, CoreError> {
        self.expected_length(limit)?;
        let mut size = 0;
        self.each_chunk(limit, |chunk| size += chunk.len()).await?;
        Ok(size)
    }

    /// The declared length, refused at once when it is over `limit`.
    fn expected_length(&self, limit: usize) -> Result<Option<usize>, CoreError> {
        match self.declared {
            Some(declared) if declared > limit as u64 => Err(CoreError::PayloadTooLarge { limit }),
            Some(declared) => Ok(Some(declared as usize)),
            None => Ok(None),
        }
    }

    /// Hands each chunk to `take` until the body ends, the running total
    /// passes `limit` (413) or the deadline passes (408).
    async fn each_chunk(self, limit: usize, mut take: impl FnMut(Bytes)) -> Result<(), CoreError> {
        let UnreadBody { body, terms, .. } = self;
        let mut chunks = body.into_data_stream();
        let mut size = 0usize;
        let all = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| CoreError::BadRequest {
                    code: "InvalidRequestContent",
                    message: format!("The request body could not be read: {e}"),
                    target: None,
                })?;
                size += chunk.len();
                if size > limit {
                    return Err(CoreError::PayloadTooLarge { limit });
                }
                take(chunk);
            }
            Ok(())
        };
        let outcome = match terms.as_ref() {
            Some(terms) => tokio::time::timeout_at(terms.deadline, all)
                .await
                .unwrap_or(Err(CoreError::BodyTimeout { timeout_secs: terms.timeout.as_secs() })),
            None => all.await,
        };
        if outcome.is_ok()
            && let Some(terms) = terms
        {
            terms.read_whole.store(true, Ordering::Relaxed);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn unread(request: axum::http::Request<Body>) -> UnreadBody {
        let Ok(body) = UnreadBody::from_request(request, &()).await;
        body
    }

    /// A body fed chunk by chunk, as a slow client sends it.
    fn channel() -> (tokio::sync::mpsc::Sender<Bytes>, Body) {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), receiver))
        });
        (sender, Body::from_stream(chunks))
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let polled = Arc::new(AtomicBool::new(false));
        let seen = polled.clone();
        let chunks = futures_util::stream::poll_fn(move |_| {
            seen.store(true, Ordering::Relaxed);
            std::task::Poll::Ready(Some(Ok::<_, std::io::Error>(Bytes::from_static(b"{"))))
        });
        let request = Request::post("/").header("content-length", "3000000").body(Body::from_stream(chunks)).unwrap();
        let refused = unread(request).await.read().await.unwrap_err();
        assert!(matches!(refused, CoreError::PayloadTooLarge { limit: MAX_BODY_BYTES }), "{refused:?}");
        assert!(!polled.load(Ordering::Relaxed), "not a byte of the body was asked for");
    }

    #[tokio::test]
    async fn chunks_are_gathered_into_one_buffer_and_the_terms_say_so() {
        let terms = BodyTerms::new(Instant::now(), Duration::from_secs(10));
        let chunks = futures_util::stream::iter(["{\"a\"", ":", "1}"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))));
        let mut request = Request::post("/").header("content-length", "7").body(Body::from_stream(chunks)).unwrap();
        request.extensions_mut().insert(terms.clone());
        assert_eq!(unread(request).await.read().await.unwrap(), Bytes::from_static(b"{\"a\":1}"));
        assert!(terms.was_read_whole());
    }

    #[tokio::test]
    async fn an_undeclared_body_over_the_limit_is_refused() {
        let chunks = futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 400]))));
        let request = Request::post("/").body(Body::from_stream(chunks)).unwrap();
        let refused = unread(request).await.read_at_most(1000).await.unwrap_err();
        assert!(matches!(refused, CoreError::PayloadTooLarge { limit: 1000 }), "{refused:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_arriving_at_the_deadline_is_a_timeout() {
        let terms = BodyTerms::new(Instant::now(), Duration::from_secs(10));
        let (sender, body) = channel();
        let mut request = Request::post("/").header("content-length", "5").body(body).unwrap();
        request.extensions_mut().insert(terms.clone());
        sender.try_send(Bytes::from_static(b"{")).unwrap();
        let refused = unread(request).await.read().await.unwrap_err();
        assert!(matches!(refused, CoreError::BodyTimeout { timeout_secs: 10 }), "{refused:?}");
        assert!(!terms.was_read_whole());
        drop(sender);
    }
}
