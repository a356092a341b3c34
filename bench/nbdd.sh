#!/usr/bin/env bash
# NBDD relay benchmarks (benchmarks, never tests; issue 7 §4, §5), each against "the best possible copy
# loop on the same path":
#   engine         the sans-IO nbdgm_nbdd::Nbdd in process relaying to 1, 10, 100 cached members, vs a loop
#                  copying the same bytes into N buffers; RSS over a long run with churn (caps)
#   sockets        `nbdgm serve` (roles nbns + nbdd) on loopback relaying paced DIRECT_GROUP datagrams to 1, 10,
#                  100 member sockets registered in its NBNS, vs a recv/send_to relay loop in the benchmark:
#                  copies/s, loss, latency p50/p99, daemon CPU and RSS
#   amplification  the daemon with the default per-source relay limit, one sender (paced, then a flood) to a
#                  100-member group: bytes out / bytes in
# Loopback only (127.0.8.x NBDD, 127.0.9.x members, 127.0.10.x senders, ephemeral ports); no root needed.
# Prints markdown tables on stdout and progress on stderr. About 5 minutes on 2 cores.
#   bench/nbdd.sh                                   (all three, default sizes)
#   bench/nbdd.sh engine --secs 3 --runs 5 --long-secs 60
#   bench/nbdd.sh sockets --members 1,10,100 --copies 10000,100000 --secs 3 --runs 2
#   bench/nbdd.sh amplification --rates 20,200,2000,0 --secs 5
# Every traffic loop is bounded in count and time; every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p nbdgm -p nbdgm-bench
bin="$CARGO_TARGET_DIR/release"
if [ "$#" -eq 0 ]; then set -- all; fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $(rustc --version)" >&2
echo "nbdgm: $("$bin/nbdgm" --version 2>/dev/null || echo '?')   cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" >&2
exec "$bin/nbdd_bench" --nbdgm "$bin/nbdgm" "$@"
