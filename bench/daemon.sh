#!/usr/bin/env bash
# Daemon benchmarks (benchmarks, never tests) of `nbdgm serve`, issue 4, each against its peer in the same run:
#   throughput  flood of HostAnnouncements on loopback -> nbdgm -> API subscriber, vs a plain recv_from loop on
#               the same address and port; then a paced run at 50 % of that loop's rate, counting loss
#   rss         peak RSS while 1000 loopback sources send first fragments that never complete, vs the caps
#   names       NAME QUERY / NODE STATUS latency and reply rate, nbdgm vs Samba nmbd on one veth bridge
#               (network namespaces on 198.51.100.0/24, created and removed by nbdgm-lab; needs root and nmbd)
# Prints markdown tables on stdout and progress on stderr.
#   bench/daemon.sh                      (all three, default sizes)
#   bench/daemon.sh throughput --count 2000000 --runs 3
#   bench/daemon.sh names --runs 3 --rate-secs 5
#   bench/daemon.sh rss --sources 1000 --count 300000
# Every traffic loop is bounded in count and time; every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p nbdgm -p nbdgm-bench
bin="$CARGO_TARGET_DIR/release"
if [ "$#" -eq 0 ]; then set -- all; fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $(rustc --version)" >&2
echo "nbdgm: $("$bin/nbdgm" --version 2>/dev/null || echo '?')   nmbd: $(/usr/sbin/nmbd --version 2>/dev/null || echo 'not installed')" >&2
exec "$bin/daemon_bench" --nbdgm "$bin/nbdgm" "$@"
