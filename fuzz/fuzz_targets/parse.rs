//! One fuzz target over every request-parsing and validation path that runs
//! before a store is touched: ids, scopes, kinds, key scopes, Dev Center's
//! api-version, repeatability headers, `Prefer: wait=`, `If-None-Match`, and
//! a PATCH body applied as a JSON merge patch. The first byte picks the
//! path; the rest is its input. Each path must return, never panic, and
//! what it accepts must keep the invariants checked below.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use longrun::api::repeatability::Repeatable;
use longrun::dialect::devcenter::check_api_version;
use longrun::http::headers::IfNoneMatch;
use longrun::model::{Applied, KeyScope, Kind, NewOperation, Operation, OperationId, Retention, Scope, Timestamp};
use longrun::dialect;
use longrun::service::watch;

const RETENTION: Retention =
    Retention { finished: Duration::from_secs(7 * 86_400), failed: Duration::from_secs(30 * 86_400) };

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match selector % 6 {
        0 => identifiers(&text),
        1 => {
            let _ = check_api_version(Some(&text));
        }
        2 => repeatability(rest),
        3 => preferences(rest),
        4 => patch(rest),
        _ => identifiers_bytes(rest),
    }
});

/// Accepted ids, scopes and kinds print back as what parses to them again.
fn identifiers(text: &str) {
    if let Some(id) = OperationId::parse(text) {
        assert_eq!(OperationId::parse(&id.to_string()), Some(id));
        assert_eq!(id.to_string(), text.to_ascii_lowercase());
    }
    if let Ok(scope) = Scope::parse(text) {
        assert_eq!(Scope::parse(&scope.to_string()), Ok(scope));
    }
    if let Ok(kind) = Kind::parse(text) {
        assert_eq!(Kind::parse(kind.as_ref()).as_ref(), Ok(&kind));
    }
    let _ = KeyScope::parse(text);
}

/// The same, with the raw bytes split at NULs into several candidates.
fn identifiers_bytes(bytes: &[u8]) {
    for part in bytes.split(|&b| b == 0) {
        if let Ok(text) = std::str::from_utf8(part) {
            identifiers(text);
        }
    }
}

/// Headers from `name\0value\0name\0value…`, skipping what HTTP forbids.
fn headers(bytes: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut parts = bytes.split(|&b| b == 0);
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        let name = match name.first() {
            Some(b'r') => HeaderName::from_static("repeatability-request-id"),
            Some(b'f') => HeaderName::from_static("repeatability-first-sent"),
            Some(b'p') => HeaderName::from_static("prefer"),
            Some(b'i') => HeaderName::from_static("if-none-match"),
            _ => match HeaderName::from_bytes(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
    map
}

fn repeatability(bytes: &[u8]) {
    let headers = headers(bytes);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for window in [Duration::ZERO, Duration::from_secs(86_400), Duration::MAX] {
        let _ = Repeatable::parse(&headers, now, window);
    }
}

fn preferences(bytes: &[u8]) {
    let headers = headers(bytes);
    if let Some(wait) = watch::prefer_wait(&headers) {
        assert!(wait <= watch::MAX_WAIT);
    }
    if let Some(IfNoneMatch::Tags(tags)) = IfNoneMatch::of(&headers) {
        // Each member is one quoted opaque tag: a list was split at its commas.
        assert!(tags.iter().all(|tag| tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')), "{tags:?}");
    }
    let op = operation();
    let _ = dialect::not_modified(&headers, &op, 2);
}

fn operation() -> Operation {
    let request = NewOperation {
        scope: Scope::parse("projects/fuzz").unwrap(),
        kind: Kind::parse("deleteDevBox").unwrap(),
        resource_location: None,
        details_location: None,
        properties: None,
        script: None,
    };
    Operation::new(OperationId::parse("01234567-89ab-cdef-0123-456789abcdef").unwrap(), request, now())
}

fn now() -> Timestamp {
    Timestamp::from_unix_nanos(1_800_000_000_000_000_000)
}

/// A PATCH body as the handler reads it (bytes → JSON → merge patch →
/// transition), twice in a row split at the first NUL so states chain.
fn patch(bytes: &[u8]) {
    let mut op = operation();
    for body in bytes.splitn(2, |&b| b == 0) {
        let Ok(patch) = serde_json::from_slice::<serde_json::Value>(body) else { return };
        let Ok(changes) = op.merge_patch(&patch) else { return };
        match op.apply(changes.clone(), now(), &RETENTION) {
            Ok(Applied::Changed(next)) => {
                assert_eq!(next.changes(), changes, "what was applied is what was asked");
                assert_eq!(next.version, op.version + 1);
                assert!(next.percent_complete.is_none_or(|p| !p.is_sign_negative()), "-0 is kept as 0");
                op = *next;
            }
            Ok(Applied::Unchanged) => assert_eq!(op.changes(), changes),
            Err(_) => return,
        }
    }
}
