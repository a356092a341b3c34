#!/usr/bin/env bash
# Runs the fuzz targets one after the other, one libFuzzer job each, and prints a
# Markdown table of the figures (see docs/FUZZING.md).
#
#   fuzz/run-all.sh [SECONDS_PER_TARGET]        (default 180)
#   TARGETS="nbns datagram" fuzz/run-all.sh 60
#
# Seed first: cargo run --release --manifest-path fuzz/Cargo.toml --features seed --bin seed
# Logs go to fuzz/artifacts/logs/<target>.log, crashes to fuzz/artifacts/<target>/.
set -u
cd "$(dirname "$0")/.."
secs=${1:-180}
targets=${TARGETS:-name nbns datagram mailslot browser lanman netlogon messenger decode capture node}
logs=fuzz/artifacts/logs
mkdir -p "$logs"

# Safe Rust only (#![forbid(unsafe_code)]): no sanitizer, for speed; debug assertions and
# overflow checks stay on (cargo-fuzz's default build).
cargo +nightly fuzz build -s none || exit 2

echo "| target | seconds | executions | exec/s | cov | ft | corpus (files/bytes) | crashes |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
status=0
for t in $targets; do
    start=$(date +%s)
    cargo +nightly fuzz run -s none "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$t.log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
    crashes=$(find "fuzz/artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null | wc -l)
    if [ "$rc" -ne 0 ]; then
        status=1
        execs=${execs:-$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")}
    fi
    echo "| $t | $took | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
done
exit $status
