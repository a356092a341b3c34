use std::time::Duration;

/// Everything that can go wrong while building or driving the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// An I/O operation failed; `what` says which.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A helper command (usually `ip`) ran but reported failure.
    #[error("command `{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// A tracked process exited while we were waiting for it to do something.
    #[error("{what} exited early ({status}); {detail}")]
    Exited {
        what: String,
        status: String,
        detail: String,
    },
    /// A caller-supplied argument is not acceptable (wrong subnet, bad name, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A tool, a permission or a file the lab needs is missing.
    #[error("prerequisite missing: {0}")]
    Prerequisite(String),
}

/// Result alias of this crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}
