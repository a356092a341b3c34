#!/usr/bin/env bash
# Browse-list benchmarks (benchmarks, never tests), issue 6 §6:
#   engine  the nbdgm-browser engine in-process as local master: N distinct HostAnnouncements (0, 1000, 4096 = the
#           cap, and a 100,000 flood against the cap): ns per announcement, entries kept, refusals, RSS along the
#           way (a fresh process per case); cost of answering GetBackupListRequest with that list, and of list()
#   lab     the same flood of 20,000 HostAnnouncements (unicast to TESTGROUP<1D>:138, 2,000/s) into `nbdgm serve`
#           as local master and, in a second lab, into Samba nmbd as LMB: entries kept, GetBackupListRequest and
#           NAME QUERY answered (latency) before / during / after the flood, RSS, CPU time, kernel drops
#           (network namespaces on 198.51.100.0/24, created and removed by nbdgm-lab; needs root and nmbd)
# Prints markdown tables on stdout and progress on stderr. About 3 minutes.
#   bench/browse.sh                       (both, default sizes)
#   bench/browse.sh engine --runs 5 --sizes 0,1000,4096,100000
#   bench/browse.sh lab --count 20000 --rate 2000
# Every traffic loop is bounded in count and time; every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p nbdgm -p nbdgm-bench
bin="$CARGO_TARGET_DIR/release"
if [ "$#" -eq 0 ]; then set -- all; fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $(rustc --version)" >&2
echo "nbdgm: $("$bin/nbdgm" --version 2>/dev/null || echo '?')   nmbd: $(/usr/sbin/nmbd --version 2>/dev/null || echo 'not installed')" >&2
exec "$bin/browse_bench" --nbdgm "$bin/nbdgm" "$@"
