#!/usr/bin/env bash
# Run every test: formatting, lints, unit/integration/conformance tests (incl. tshark differential).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --release
