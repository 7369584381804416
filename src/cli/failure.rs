//! How a command fails: a message for stderr and the exit code, 2 for a
//! problem with what was asked (flags, store, address), 1 for one met
//! while doing it.

/// The exit code of a configuration problem.
pub const CONFIG_ERROR: u8 = 2;

/// A command's failure.
pub struct Failure {
    /// The process's exit code.
    pub code: u8,
    /// What went wrong, one line.
    pub message: String,
}

/// A problem with what was asked (exit code 2).
pub fn config_error(e: impl std::fmt::Display) -> Failure {
    Failure { code: CONFIG_ERROR, message: format!("{e:#}") }
}

/// A problem met while doing it (exit code 1).
pub fn runtime_error(e: impl std::fmt::Display) -> Failure {
    Failure { code: 1, message: format!("{e:#}") }
}
