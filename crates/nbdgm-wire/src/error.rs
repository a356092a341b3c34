//! Typed parse and emit errors shared by every layer of the codec.

use thiserror::Error;

/// Why a packet could not be parsed or emitted. Offsets count from the start of the
/// buffer handed to the layer that failed (for example the SMB header for mailslot errors).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The buffer ended before a field that must be present.
    #[error("truncated {field}: need {need} bytes at offset {offset}, {have} available")]
    Truncated {
        field: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("invalid {field} at offset {offset}: {reason}")]
    Invalid {
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// A value cannot be emitted (too long, out of range).
    #[error("cannot emit {field}: {reason}")]
    Emit {
        field: &'static str,
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, offset: usize, reason: &'static str) -> Self {
        Error::Invalid {
            field,
            offset,
            reason,
        }
    }

    pub(crate) fn emit(field: &'static str, reason: &'static str) -> Self {
        Error::Emit { field, reason }
    }
}

/// Result alias for the codec.
pub type Result<T> = core::result::Result<T, Error>;
