//! Page tokens of operation lists (the native `continuationToken`, Google's
//! `pageToken`): the (created_at, id) position of a page's last operation,
//! opaque to clients and stable while new operations arrive.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::{OperationId, Timestamp};

/// The token that continues after the operation created `at` with `id`.
pub fn encode_token(at: Timestamp, id: OperationId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", at.unix_nanos()))
}

/// The position a token names; `None` for anything this service did not hand out.
pub fn decode_token(token: &str) -> Option<(Timestamp, OperationId)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (nanos, id) = text.split_once('.')?;
    let nanos: i64 = nanos.parse().ok().filter(|n| *n >= 0)?;
    Some((Timestamp::from_unix_nanos(nanos), OperationId::parse(id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_the_position_it_was_made_from_and_nothing_else_decodes() {
        let id = OperationId::parse("0193f0a2-7c1e-7b3a-9f4e-2d5c6b7a8e90").unwrap();
        let at = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
        assert_eq!(decode_token(&encode_token(at, id)), Some((at, id)));
        for bad in ["", "not base64!", "MTIz", &URL_SAFE_NO_PAD.encode("-1.0193f0a2-7c1e-7b3a-9f4e-2d5c6b7a8e90")] {
            assert_eq!(decode_token(bad), None, "{bad}");
        }
    }
}
