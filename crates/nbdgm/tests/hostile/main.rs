//! Attack tests (issue 12): each module plays one attacker of the threat model in
//! `docs/security.md` against a running daemon or tool (loopback, or namespaces on the
//! documentation nets) and asserts the bound that defence promises.

// Test code: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod api_ownership;
mod browse_pages;
mod browser_gate;
mod elections;
mod http_flood;
mod log_forging;
mod nbns_answers;
mod nbns_quota;
mod privileges;
mod rap_fetch;
mod reply_gate;
mod secrets;
mod slow_subscriber;
mod smaller;
mod terminal;
mod txid;
