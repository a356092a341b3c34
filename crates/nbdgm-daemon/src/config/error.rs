//! Configuration errors: the key at fault and, for a file, its line and column.

use std::io;
use std::path::{Path, PathBuf};

/// What kind of mistake a file error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not TOML.
    Syntax,
    /// A key this version does not know.
    UnknownKey,
    /// A value of the wrong type, an unknown variant, a missing required key.
    Type,
    /// A well-typed value that is not acceptable (bad name, prefix > 32, ...).
    Value,
}

/// A configuration error, with the key and (for files) the position.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A problem in configuration text. `line`/`column` are 1-based, 0 if unknown.
    #[error("{}", fmt_file_error(file.as_deref(), key, *line, *column, message))]
    File {
        file: Option<PathBuf>,
        key: String,
        line: usize,
        column: usize,
        kind: ErrorKind,
        message: String,
    },
    /// A problem in a command-line override.
    #[error("{flag} {value:?}: {message}")]
    Flag {
        flag: &'static str,
        value: String,
        message: String,
    },
    /// A problem in a configuration built in code (no text to point at).
    #[error("{key}: {message}")]
    Value { key: String, message: String },
}

pub(super) fn fmt_file_error(
    file: Option<&Path>,
    key: &str,
    line: usize,
    column: usize,
    message: &str,
) -> String {
    let mut s = file.map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
    if line > 0 {
        s.push_str(&format!(":{line}:{column}"));
    }
    if !key.is_empty() {
        s.push_str(&format!(": {key}"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

impl ConfigError {
    /// The key path (`interface[0].address`) or flag (`--name`) at fault.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::File { key, .. } | ConfigError::Value { key, .. } => Some(key),
            ConfigError::Flag { flag, .. } => Some(flag),
        }
    }

    /// The 1-based line in the file, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::File { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }

    /// The 1-based column in the file, if known.
    pub fn column(&self) -> Option<usize> {
        match self {
            ConfigError::File { column, line, .. } if *line > 0 => Some(*column),
            _ => None,
        }
    }

    /// The kind of a file error.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ConfigError::File { kind, .. } => Some(*kind),
            ConfigError::Value { .. } => Some(ErrorKind::Value),
            _ => None,
        }
    }
}

/// A validation failure: key path and message.
pub(super) struct Issue {
    pub(super) key: String,
    pub(super) message: String,
}

pub(super) fn issue(key: impl Into<String>, message: impl Into<String>) -> Issue {
    Issue {
        key: key.into(),
        message: message.into(),
    }
}
