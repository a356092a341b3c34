//! The status badge `/badge/{check}.svg` (shields-like): "nbdgm | ok" green, "N
//! violations" red, "unknown" grey. A check counts with its vantage points
//! (`CHECK@...`); the name appears only in the XML-escaped title.

use super::page::split_check;
use crate::store::{LatestRow, Verdict};
use askama::Template;

/// The badge of one check.
#[derive(Debug, Clone, Template)]
#[template(path = "badge.svg", escape = "html")]
pub struct Badge {
    pub check: String,
    pub message: String,
    pub color: &'static str,
    pub width: u32,
    pub label_width: u32,
    pub message_width: u32,
    pub label_x: u32,
    pub message_x: u32,
}

/// Text width estimate of Verdana 11 px (shields uses real metrics; this is close).
fn text_width(s: &str) -> u32 {
    s.chars()
        .map(|c| if c.is_ascii_digit() { 7 } else { 6 })
        .sum::<u32>()
        + 10
}

impl Badge {
    /// The badge of `check` from the latest rows; `None` when the check is neither
    /// configured (`known`) nor in the store.
    pub fn of(check: &str, rows: &[LatestRow], known: bool) -> Option<Badge> {
        let mine: Vec<&LatestRow> = rows
            .iter()
            .filter(|r| r.check == check || split_check(&r.check).0 == check)
            .collect();
        if mine.is_empty() && !known {
            return None;
        }
        let bad = mine
            .iter()
            .filter(|r| r.verdict == Verdict::Violation)
            .count();
        let ok = mine.iter().any(|r| r.verdict == Verdict::Ok);
        let (message, color) = match bad {
            0 if ok => ("ok".to_owned(), "#2e7d32"),
            0 => ("unknown".to_owned(), "#616161"),
            1 => ("1 violation".to_owned(), "#c62828"),
            n => (format!("{n} violations"), "#c62828"),
        };
        let label_width = text_width("nbdgm");
        let message_width = text_width(&message);
        Some(Badge {
            check: check.to_owned(),
            color,
            width: label_width + message_width,
            label_x: label_width / 2,
            message_x: label_width + message_width / 2,
            label_width,
            message_width,
            message,
        })
    }
}
