//! Configuration errors: the key at fault and, for a file, its line and column.

use std::io;
use std::net::Ipv4Addr;
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

/// Why one value is not acceptable; in a [`ConfigError`] its message follows the key
/// or the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("expected one of b, p, m, h")]
    NodeTypeName,
    #[error("a {0}-node needs a name server: set [nbns] servers")]
    NodeTypeWithoutNbns(String),
    #[error("{0:?} is not an octal file mode such as \"0660\"")]
    FileModeSyntax(String),
    #[error("{0:?}: only permission bits (up to 0777) are allowed")]
    FileModeBits(String),
    #[error("{input:?}: {addr:?} is not an IPv4 address")]
    CidrAddress { input: String, addr: String },
    #[error("{input:?}: prefix length {len:?} is not a number")]
    PrefixSyntax { input: String, len: String },
    #[error("{input:?}: prefix length {len} is larger than 32")]
    PrefixTooLong { input: String, len: u32 },
    #[error("{input:?} needs a prefix length, as in {ip}/24, to know the subnet")]
    PrefixMissing { input: String, ip: Ipv4Addr },
    #[error("{input:?}: {reason}")]
    Cidr { input: String, reason: String },
    #[error("{0} cannot be a node's address")]
    NodeAddress(Ipv4Addr),
    #[error("{0} cannot be an interface address")]
    InterfaceAddress(Ipv4Addr),
    #[error("a NetBIOS name cannot be empty")]
    EmptyName,
    #[error("{0:?} is {1} bytes long; NetBIOS names have at most 15")]
    NameTooLong(String, usize),
    #[error("{name:?}: character {c:?} is not printable ASCII")]
    NameCharacter { name: String, c: char },
    #[error("{0:?} cannot start with '*' or a space")]
    NameStart(String),
    /// A name or scope the codec refuses, with the codec's reason.
    #[error("{input:?}: {reason}")]
    Wire { input: String, reason: String },
    #[error("{0:?}: put the scope in node.scope, not in the name")]
    ScopeInName(String),
    #[error("{0:?}: names starting with '*' cannot be registered")]
    WildcardName(String),
    #[error("{input:?} is not a log filter such as \"info\" or \"nbdgm=debug\": {reason}")]
    LogFilter { input: String, reason: String },
}

/// A validation failure: key path and message.
pub(super) struct Issue {
    pub(super) key: String,
    pub(super) message: String,
}

pub(super) fn issue(key: impl Into<String>, message: impl std::fmt::Display) -> Issue {
    Issue {
        key: key.into(),
        message: message.to_string(),
    }
}
