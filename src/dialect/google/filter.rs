//! The `filter` of ListOperations (AIP-160, the part operations need):
//! `done = true|false`, `state = "Running"`, `kind = "resize"`, joined by
//! `AND`; values may be quoted. Anything else is INVALID_ARGUMENT.

use crate::model::{Kind, Operation, State};

/// What a filter asks for; empty asks for everything.
#[derive(Debug, Default, PartialEq)]
pub struct Filter {
    /// Only finished (true) or unfinished (false) operations.
    pub done: Option<bool>,
    /// Only this state.
    pub state: Option<State>,
    /// Only this kind.
    pub kind: Option<Kind>,
}

impl Filter {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        if text.trim().is_empty() {
            return Ok(filter);
        }
        for term in text.split(" AND ") {
            let (field, value) =
                term.split_once('=').ok_or_else(|| format!("'{}' is not a `field = value` term", term.trim()))?;
            let field = field.trim();
            let value = unquote(value.trim()).ok_or_else(|| format!("the value of {field} is badly quoted"))?;
            let taken = match field {
                "done" => filter
                    .done
                    .replace(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("done is true or false, not '{value}'")),
                    })
                    .is_some(),
                "state" => {
                    let state = State::parse(value).ok_or_else(|| format!("unknown state '{value}'"))?;
                    filter.state.replace(state).is_some()
                }
                "kind" => filter.kind.replace(Kind::parse(value).map_err(|e| e.to_string())?).is_some(),
                _ => return Err(format!("cannot filter on '{field}': use done, state or kind")),
            };
            if taken {
                return Err(format!("{field} is given twice"));
            }
        }
        Ok(filter)
    }

    /// Whether `op` passes the parts the store does not apply (`done`).
    pub fn admits(&self, op: &Operation) -> bool {
        self.done.is_none_or(|done| op.state.is_terminal() == done)
    }
}

/// A value without its double quotes, if it had a matching pair.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|inner| !inner.contains('"')),
        None => (!value.contains('"') && !value.is_empty()).then_some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_done_state_and_kind_joined_by_and() {
        let filter = Filter::parse(r#"done = false AND state = "Running" AND kind=resize"#).unwrap();
        assert_eq!(
            filter,
            Filter { done: Some(false), state: Some(State::Running), kind: Some(Kind::parse("resize").unwrap()) }
        );
        assert_eq!(Filter::parse("  ").unwrap(), Filter::default());
        assert_eq!(Filter::parse("done=true").unwrap().done, Some(true));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "done",
            "done = maybe",
            "state = \"Sleeping\"",
            "owner = \"x\"",
            "kind = \"a b\"",
            "state = \"Running",
            "done = true OR done = false",
            "done = true AND done = false",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
