#!/usr/bin/env bash
# Where the receive -> API subscriber path spends its time (a profile, never a test; issue 16 §1).
# Runs one `daemon_bench throughput` flood of COUNT HostAnnouncements (default 6,000,000, at most 20 s) and,
# once the daemon has been up 4 s, records it for 4 s with `perf record --call-graph dwarf` and, after
# that, counts its system calls and context switches for 4 s with `perf stat`. Then prints the split by thread
# and the functions with the largest inclusive share. Needs perf and root (or perf_event_paranoid <= 1).
#   bench/profile-throughput.sh                         (target/release/nbdgm)
#   NBDGM=/path/to/nbdgm bench/profile-throughput.sh    (another build, e.g. to compare before and after)
#   COUNT=8000000 OUT=/tmp/p.data bench/profile-throughput.sh
# COUNT must keep the flood going for the 12 s after the daemon starts (the default does at ~350,000/s).
# The flood is bounded by COUNT and 20 s; only the processes this script starts are waited for.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${NO_BUILD:-}" ]; then cargo build --release -q -p nbdgm -p nbdgm-bench; fi
bin="$CARGO_TARGET_DIR/release"
nbdgm="${NBDGM:-$bin/nbdgm}"
count="${COUNT:-6000000}"
out="${OUT:-$(mktemp -d)/perf.data}"
log="$(mktemp)"
command -v perf > /dev/null || { echo "perf is not installed" >&2; exit 2; }

"$bin/daemon_bench" --nbdgm "$nbdgm" throughput --count "$count" --max-secs 20 --runs 1 \
    --paced-count 1000 > "$log" 2>&1 &
bench=$!
# The daemon starts after the plain loop's run; find the one this bench started (its parent is the bench).
pid=""
for _ in $(seq 1 6000); do  # up to 5 min: the bench first waits up to 2 min for a quiet machine
    pid="$(pgrep -P "$bench" -f "serve" | head -1 || true)"
    [ -n "$pid" ] && break
    sleep 0.05
done
if [ -z "$pid" ]; then
    echo "the daemon did not start; bench log: $log" >&2
    wait "$bench" || true
    exit 1
fi
sleep 4
perf record --call-graph dwarf,8192 -F 1999 -p "$pid" -o "$out" -- sleep 4 2> /dev/null
perf stat -e 'syscalls:sys_enter_recvmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_futex,syscalls:sys_enter_clock_nanosleep,context-switches,task-clock' \
    -p "$pid" -- sleep 4 2>&1 | grep -v '^$' || true
wait "$bench"
grep -E '^run 0: nbdgm' "$log" || true
echo "## samples by thread"
perf report -i "$out" --no-children --sort comm --stdio -g none 2> /dev/null | grep -v '^#' | grep -v '^$' | head -5
echo "## inclusive share of the daemon's samples (inlined frames left out)"
perf report -i "$out" --children --sort sym --stdio -g none 2> /dev/null | grep -v '^#' | grep -v '^$' \
    | grep -v inlined | head -40
echo "profile: $out   bench log: $log"
