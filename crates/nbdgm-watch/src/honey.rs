//! Honey queries. Skeleton: filled in next.

use crate::config::WatchConfig;
use serde_json::{json, Value};

/// Honey queries sent, to recognise their answers.
#[derive(Debug)]
pub struct HoneyBook {}

impl HoneyBook {
    pub(crate) fn new(_cfg: &WatchConfig) -> Self {
        HoneyBook {}
    }
    pub(crate) fn stats(&self) -> Value {
        json!({})
    }
}
