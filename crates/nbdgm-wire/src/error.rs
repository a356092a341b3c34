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

    /// The same error, naming the enclosing `field` (e.g. "SOURCE_NAME" for a name error).
    pub(crate) fn in_field(self, name: &'static str) -> Self {
        match self {
            Error::Truncated {
                offset, need, have, ..
            } => Error::Truncated {
                field: name,
                offset,
                need,
                have,
            },
            Error::Invalid { offset, reason, .. } => Error::Invalid {
                field: name,
                offset,
                reason,
            },
            e => e,
        }
    }

    /// The same error with its offset moved by `by` (a sub-buffer's position in its packet).
    pub(crate) fn offset_by(self, by: usize) -> Self {
        match self {
            Error::Truncated {
                field,
                offset,
                need,
                have,
            } => Error::Truncated {
                field,
                offset: offset + by,
                need,
                have,
            },
            Error::Invalid {
                field,
                offset,
                reason,
            } => Error::Invalid {
                field,
                offset: offset + by,
                reason,
            },
            e => e,
        }
    }
}

/// Result alias for the codec.
pub type Result<T> = core::result::Result<T, Error>;
