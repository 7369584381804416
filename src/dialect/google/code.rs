//! `google.rpc.Code`: the canonical codes by number and name, the code a
//! producer's error code names, and the code of each longrun refusal.
//! <https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto>

use axum::http::StatusCode;

use crate::http::error::CoreError;

/// The codes, by number.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// `CANCELLED`.
pub const CANCELLED: i32 = 1;
/// `UNKNOWN`.
pub const UNKNOWN: i32 = 2;

/// The name of code `code`.
pub fn name(code: i32) -> &'static str {
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// The code a producer's error code names, case and underscores ignored
/// (`DEADLINE_EXCEEDED`, `DeadlineExceeded`, `deadline_exceeded`), else
/// UNKNOWN. `OK` names no error, so it is UNKNOWN too.
pub fn of_producer(code: &str) -> i32 {
    let folded: String = code.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect();
    let found = NAMES.iter().position(|name| name.replace('_', "").to_lowercase() == folded);
    match found {
        Some(0) | None => UNKNOWN,
        Some(i) => i as i32,
    }
}

/// `code` in UPPER_SNAKE_CASE (an `ErrorInfo.reason`): `DiskFull` →
/// `DISK_FULL`, `disk-full` → `DISK_FULL`, `NOT_FOUND` stays.
pub fn upper_snake(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 4);
    let mut previous: Option<char> = None;
    for c in code.chars() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else {
            if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        previous = Some(c);
    }
    out.trim_end_matches('_').to_owned()
}

/// The HTTP status Google's mapping pairs with `code` (google/rpc/code.proto).
pub fn http_status(code: i32) -> StatusCode {
    let status = match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    };
    StatusCode::from_u16(status).expect("every status above is valid")
}

/// The code and HTTP status a longrun refusal answers with.
pub fn of_core(core: &CoreError) -> (i32, StatusCode) {
    let code = match core {
        CoreError::NoSuchOperation { .. }
        | CoreError::OperationExpired { .. }
        | CoreError::NoSuchRoute { .. }
        | CoreError::NoSuchResource { .. } => 5,
        CoreError::BadRequest { .. } | CoreError::BadHead(_) => 3,
        CoreError::PayloadTooLarge { .. } | CoreError::HeadTooLarge { .. } | CoreError::BodyTimeout { .. } => 3,
        CoreError::Conflict { .. } | CoreError::PreconditionFailed { .. } => 9,
        CoreError::Unauthenticated { .. } => 16,
        CoreError::Forbidden { .. } => 7,
        CoreError::MethodNotAllowed { .. } => 12,
        CoreError::TooManyRequests { .. } | CoreError::InsufficientStorage => 8,
        CoreError::Unavailable(_) => 14,
        CoreError::Internal(_) => 13,
    };
    // Google's HTTP mapping, except where longrun's own status says more
    // (413, 431, 408, 405, 507 keep theirs).
    let status = match code {
        9 => StatusCode::BAD_REQUEST,
        _ => core.status(),
    };
    (code, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_code_names_a_google_code_in_any_spelling_or_is_unknown() {
        for (given, code) in [
            ("DEADLINE_EXCEEDED", 4),
            ("DeadlineExceeded", 4),
            ("permission_denied", 7),
            ("NotFound", 5),
            ("Cancelled", 1),
            ("OK", 2),
            ("DiskFull", 2),
            ("", 2),
        ] {
            assert_eq!(of_producer(given), code, "{given}");
        }
        assert_eq!(name(4), "DEADLINE_EXCEEDED");
        assert_eq!(name(99), "UNKNOWN");
    }

    #[test]
    fn grpc_codes_pair_with_googles_http_statuses() {
        for (code, status) in
            [(0, 200), (1, 499), (3, 400), (5, 404), (7, 403), (8, 429), (14, 503), (16, 401), (99, 500)]
        {
            assert_eq!(http_status(code).as_u16(), status, "{}", name(code));
        }
    }

    #[test]
    fn reasons_are_upper_snake_case() {
        for (given, reason) in [
            ("DiskFull", "DISK_FULL"),
            ("NOT_FOUND", "NOT_FOUND"),
            ("disk-full", "DISK_FULL"),
            ("OperationFailed2", "OPERATION_FAILED2"),
            ("E", "E"),
            ("x.y z", "X_Y_Z"),
        ] {
            assert_eq!(upper_snake(given), reason, "{given}");
        }
    }

    #[test]
    fn refusals_map_to_the_codes_clients_retry_or_not() {
        let of = |core: CoreError| of_core(&core);
        assert_eq!(of(CoreError::NoSuchOperation { id: "x".into() }), (5, StatusCode::NOT_FOUND));
        assert_eq!(of(CoreError::Unavailable("db".into())), (14, StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(
            of(CoreError::Conflict { code: "OperationTerminal", message: "m".into() }),
            (9, StatusCode::BAD_REQUEST)
        );
        assert_eq!(of(CoreError::TooManyRequests { retry_after_secs: 1 }), (8, StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(of(CoreError::Unauthenticated { message: "m".into() }), (16, StatusCode::UNAUTHORIZED));
    }
}
