#!/usr/bin/env bash
# Run every test: formatting, lints, unit/integration/conformance tests (incl. tshark differential).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The lean CLI (no monitor/audit: no SQLite, PostgreSQL, SMTP, metrics) keeps building.
cargo clippy -p nbdgm --no-default-features --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --release --no-fail-fast 2>&1 | tee "$log"
# The Debian package, from the release binary just tested (no second build): built, installed,
# checked and purged (root; otherwise SKIPPED). Its checks count in the closing line below.
package=0
./scripts/package-test.sh 2>&1 | tee -a "$log" || package=$?
# One closing line over all test binaries (cargo prints one per binary, the last often a doc-test run of 0).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$package"
