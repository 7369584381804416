//! Parsers of the list-valued request headers longrun acts on, so every
//! route reads them alike: `If-None-Match` (RFC 9110 §13.1.2) and `Prefer`
//! (RFC 7240). Parsing only; what a match means is the caller's business.

use std::convert::Infallible;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

/// The request's headers, taken rather than copied: axum's `HeaderMap`
/// extractor clones the whole map (every name and value) and the handler
/// then drops both, a measurable share of a status GET. As a `FromRequest`
/// extractor it must come last, after those that only look at the parts.
pub struct RequestHeaders(pub HeaderMap);

impl<S: Sync> FromRequest<S> for RequestHeaders {
    type Rejection = Infallible;

    async fn from_request(mut request: Request, _: &S) -> Result<Self, Infallible> {
        Ok(RequestHeaders(std::mem::take(request.headers_mut())))
    }
}

/// An `If-None-Match` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags, each kept as its opaque tag (quotes included,
    /// `W/` dropped: `If-None-Match` compares weakly).
    Tags(Vec<String>),
    /// Present but not a valid list: a condition no representation matches,
    /// so a GET answers in full and a long-poll answers at once (what the
    /// client holds is not the current ETag, whatever it is).
    Malformed,
}

impl IfNoneMatch {
    /// The condition of a request, or `None` when it has none. Several
    /// header lines make one list.
    pub fn of(headers: &HeaderMap) -> Option<IfNoneMatch> {
        let mut tags = Vec::new();
        let mut any = false;
        let mut present = false;
        for line in headers.get_all(header::IF_NONE_MATCH) {
            present = true;
            let Ok(line) = line.to_str() else { return Some(IfNoneMatch::Malformed) };
            for member in split_list(line) {
                if member == "*" {
                    any = true;
                } else {
                    let opaque = member.strip_prefix("W/").unwrap_or(member);
                    if !is_opaque_tag(opaque) {
                        return Some(IfNoneMatch::Malformed);
                    }
                    tags.push(opaque.to_owned());
                }
            }
        }
        match (any, tags.is_empty()) {
            (true, _) => Some(IfNoneMatch::Any),
            (false, true) if present => Some(IfNoneMatch::Malformed), // an empty value
            (false, true) => None,
            (false, false) => Some(IfNoneMatch::Tags(tags)),
        }
    }

    /// True when `etag` (the current representation's) matches: the
    /// condition is false, so a GET answers 304 and a long-poll waits.
    pub fn matches(&self, etag: &str) -> bool {
        let etag = etag.strip_prefix("W/").unwrap_or(etag);
        match self {
            IfNoneMatch::Any => true,
            IfNoneMatch::Tags(tags) => tags.iter().any(|tag| tag == etag),
            IfNoneMatch::Malformed => false,
        }
    }
}

/// `opaque-tag = DQUOTE *etagc DQUOTE`, `etagc = %x21 / %x23-7E / obs-text`.
fn is_opaque_tag(tag: &str) -> bool {
    let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else { return false };
    tag.len() >= 2 && inner.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
}

/// The value of preference `name` (case-insensitive) in `Prefer`, unquoted:
/// `Some("")` for a preference without a value. Only the first instance
/// counts (RFC 7240 §2). Preferences are separated by commas; what follows
/// a `;` are that preference's parameters, never preferences of their own.
pub fn preference(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all("prefer").iter().filter_map(|line| line.to_str().ok()).flat_map(split_list).find_map(|member| {
        // `token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )`
        let head = split_outside_quotes(member, ';').next().unwrap_or("");
        let (token, value) = match head.split_once('=') {
            Some((token, value)) => (token.trim(), value.trim()),
            None => (head.trim(), ""),
        };
        token.eq_ignore_ascii_case(name).then(|| unquote(value))
    })
}

/// `word = token / quoted-string`: the quoted string's content, escapes resolved.
fn unquote(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            out
        }
        None => word.to_owned(),
    }
}

/// The non-empty members of a comma-separated list (RFC 9110 §5.6.1),
/// trimmed; commas inside quoted strings do not separate.
fn split_list(line: &str) -> impl Iterator<Item = &str> {
    split_outside_quotes(line, ',').map(str::trim).filter(|member| !member.is_empty())
}

/// Splits at `separator` where it is not inside a quoted string.
fn split_outside_quotes(line: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (at, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == separator && !quoted => {
                    rest = Some(&text[at + c.len_utf8()..]);
                    return Some(&text[..at]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn if_none_match_reads_lists_weak_tags_and_star() {
        let cases: &[(&[&'static str], Option<IfNoneMatch>)] = &[
            (&[], None),
            (&["\"3\""], Some(IfNoneMatch::Tags(vec!["\"3\"".into()]))),
            (&["W/\"3\""], Some(IfNoneMatch::Tags(vec!["\"3\"".into()]))),
            (&["\"1\", W/\"2\" ,\"3\""], Some(IfNoneMatch::Tags(vec!["\"1\"".into(), "\"2\"".into(), "\"3\"".into()]))),
            (&["\"1\"", "\"2\""], Some(IfNoneMatch::Tags(vec!["\"1\"".into(), "\"2\"".into()]))),
            (&["\"a,b\""], Some(IfNoneMatch::Tags(vec!["\"a,b\"".into()]))),
            (&["*"], Some(IfNoneMatch::Any)),
            (&[" * "], Some(IfNoneMatch::Any)),
            (&["3"], Some(IfNoneMatch::Malformed)),
            (&["null"], Some(IfNoneMatch::Malformed)),
            (&["\"3"], Some(IfNoneMatch::Malformed)),
            (&["\"a b\""], Some(IfNoneMatch::Malformed)),
            (&[","], Some(IfNoneMatch::Malformed)),
            (&[""], Some(IfNoneMatch::Malformed)),
        ];
        for (values, expected) in cases {
            assert_eq!(&IfNoneMatch::of(&headers("if-none-match", values)), expected, "{values:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let list = IfNoneMatch::of(&headers("if-none-match", &["\"1\", W/\"2\""])).unwrap();
        assert!(list.matches("\"2\"") && list.matches("\"1\"") && list.matches("W/\"1\""));
        assert!(!list.matches("\"3\""));
        assert!(IfNoneMatch::Any.matches("\"9\""));
        assert!(!IfNoneMatch::Malformed.matches("\"9\""), "a condition no representation matches");
    }

    #[test]
    fn prefer_reads_preferences_not_parameters() {
        let wait = |values: &[&'static str]| preference(&headers("prefer", values), "wait");
        assert_eq!(wait(&[]), None);
        assert_eq!(wait(&["wait=10"]).as_deref(), Some("10"));
        assert_eq!(wait(&["respond-async, wait=10"]).as_deref(), Some("10"));
        assert_eq!(wait(&["respond-async", "Wait=7"]).as_deref(), Some("7"));
        assert_eq!(wait(&["wait = 5"]).as_deref(), Some("5"), "BWS around =");
        assert_eq!(wait(&["wait=\"5\""]).as_deref(), Some("5"), "a quoted value");
        assert_eq!(wait(&["wait=5; foo=bar"]).as_deref(), Some("5"), "wait with a parameter");
        assert_eq!(wait(&["foo; wait=5"]), None, "a parameter of foo, not a preference");
        assert_eq!(wait(&["foo=\"a, wait=5\""]), None, "inside a quoted string");
        assert_eq!(wait(&["handling=lenient, wait=1, wait=9"]).as_deref(), Some("1"), "the first counts");
        assert_eq!(wait(&["waiting=5"]), None);
    }
}
