//! Errors of the domain: the error an operation reports, and the reasons a
//! requested change is refused. Plain enums, no HTTP: each front-end decides
//! how to say them.

use serde::{Deserialize, Serialize};

use super::State;

/// Why an operation failed, in Azure.Core's `Error` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationError {
    /// A machine-readable code, e.g. `ImageSignatureInvalid`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// What the error is about, if anything in particular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The errors that led to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<OperationError>>,
}

/// Why a requested change to an operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionError {
    /// The operation already ended; terminal states are final.
    #[error("the operation is already {state}; a terminal operation cannot change")]
    AlreadyTerminal {
        /// The state it ended in.
        state: State,
    },
    /// This move between states is not allowed (e.g. Running → NotStarted,
    /// which only an expired lease may do).
    #[error("the operation is {from}; it cannot move to {to}")]
    IllegalTransition {
        /// Current state.
        from: State,
        /// Requested state.
        to: State,
    },
    /// percentComplete may not go down (or be cleared) within an attempt.
    #[error("percentComplete is {current}; it cannot decrease to {requested}")]
    ProgressDecreased {
        /// Current value.
        current: f64,
        /// Requested value, `null` when clearing.
        requested: String,
    },
    /// A field value is out of its domain.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The offending field, in camelCase.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl TransitionError {
    /// True when the refusal is about the operation's current state (HTTP
    /// 409), false when the request is wrong whatever the state (HTTP 400).
    pub fn is_conflict(&self) -> bool {
        !matches!(self, TransitionError::InvalidValue { .. })
    }
}

/// Why a scope or kind was refused: each names the text and the rule it
/// breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not `tenants/…`, `projects/…` or `accounts/…`.
    #[error("scope '{0}' must be tenants/{{uuid}}, projects/{{name}} or accounts/{{name}}")]
    ScopeSyntax(String),
    /// A tenant scope whose id is not a UUID.
    #[error("scope '{0}': a tenant id must be a UUID")]
    TenantNotUuid(String),
    /// A project scope whose name breaks Dev Center's pattern.
    #[error("scope '{0}': a project name must match ^[a-zA-Z0-9][a-zA-Z0-9-_.]{{2,62}}$")]
    ProjectName(String),
    /// An account scope whose name breaks Cognitive Services' pattern.
    #[error("scope '{0}': an account name must match ^[a-zA-Z0-9][a-zA-Z0-9-_.]{{1,63}}$")]
    AccountName(String),
    /// A kind that is not camelCase.
    #[error("kind '{0}' must be camelCase: ^[a-z][a-zA-Z0-9]{{0,63}}$")]
    Kind(String),
}

/// The message alone, where a refusal is reported as text (command-line
/// values, 400 messages).
impl From<IdError> for String {
    fn from(e: IdError) -> String {
        e.to_string()
    }
}
