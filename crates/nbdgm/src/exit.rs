//! Exit codes shared by every subcommand (documented in `docs/cli.md`).

/// Everything went as asked.
pub const OK: u8 = 0;
/// Findings: for `decode`, some packets were malformed (they are still printed).
pub const FINDINGS: u8 = 1;
/// Usage error, or an input that could not be read (bad file, not a capture, damage).
pub const USAGE: u8 = 2;
