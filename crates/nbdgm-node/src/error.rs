//! Errors of the node's commands (thiserror), and the failure results carried by
//! completion events (RFC 1001 §15.1, §17.2).

use nbdgm_wire::Name;
use serde::Serialize;
use thiserror::Error;

/// A command (or configuration) the node refused at once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("node type {0} is not implemented (only B)")]
    UnsupportedNodeType(&'static str),
    #[error("invalid name {name}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("name {name} is in scope {found:?}, the node's scope is {expected:?}")]
    WrongScope {
        name: String,
        found: String,
        expected: String,
    },
    #[error("name {0} is already in the name table")]
    NameExists(String),
    #[error("name {0} is not in the name table")]
    NameNotFound(String),
    #[error("name table full ({0} names)")]
    TooManyNames(usize),
    #[error("transaction table full ({0} pending)")]
    TooManyTransactions(usize),
    #[error("transmit queue full")]
    QueueFull,
    #[error("source name {0} is not an active registered name")]
    SourceNotRegistered(String),
    #[error("user data of {len} bytes exceeds the limit of {max}")]
    DataTooLarge { len: usize, max: usize },
    #[error("cannot encode packet: {0}")]
    Encode(String),
}

/// Why a name lookup or node-status request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupError {
    /// A negative response (NAM_ERR), or a cached negative answer.
    #[error("name not found")]
    NotFound,
    /// No answer after all retries.
    #[error("no response")]
    NoResponse,
    /// The node shut down first.
    #[error("cancelled")]
    Cancelled,
}

/// Why a datagram send that needed name resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendError {
    #[error("destination name could not be resolved: {0}")]
    Unresolved(LookupError),
    #[error("transmit queue full")]
    QueueFull,
    #[error("cannot encode datagram: {0}")]
    Encode(String),
    /// P-node: the NBDD refused the datagram (NEGATIVE QUERY RESPONSE) or did not
    /// answer the DATAGRAM QUERY REQUEST (RFC 1002 §5.3.2).
    #[error("the NBDD is unavailable or refused the datagram")]
    NbddUnavailable,
}

pub(crate) fn check_scope(name: &Name, scope: &str) -> Result<Name, NodeError> {
    if name.scope() == scope {
        return Ok(name.clone());
    }
    if name.scope().is_empty() {
        return name
            .clone()
            .with_scope(scope)
            .map_err(|_| NodeError::InvalidConfig("invalid scope".into()));
    }
    Err(NodeError::WrongScope {
        name: name.to_string(),
        found: name.scope().to_owned(),
        expected: scope.to_owned(),
    })
}
