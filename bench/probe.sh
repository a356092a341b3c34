#!/usr/bin/env bash
# Exposure-probe benchmark (benchmark, never a test), issue 5: `nbdgm probe` against nmap on the same
# /24 of network-namespace hosts, in one run. The lab (198.51.100.0/24, created and removed by nbdgm-lab):
# a scanner at .250 and 11 targets with known truth (Samba nmbd as local master browser and not, nothing
# listening, nftables drop, nftables reject admin-prohibited); the other addresses are empty. In each
# round, from the scanner's namespace, alternating:
#   nbdgm probe 198.51.100.0/24 --ports 137,138/udp --format json              (defaults: ARP discovery first)
#   nmap -sU -p137,138 -n -Pn 198.51.100.0/24 -oX -
#   nbdgm probe 198.51.100.0/24 --ports 137,138/udp --format json --concurrency 256
#   nmap -sU -p137,138 -n 198.51.100.0/24 -oX -                                 (ARP host discovery)
#   nbdgm probe ... --concurrency 256 --timeout-ms 200 --retries 1
#   nmap -sU -p137 --script nbstat -n 198.51.100.0/24 -oX -
# and reports wall time, UDP probes on the wire per second (nftables bridge counter on the scanner's port)
# and the states against the truth, as markdown on stdout (progress on stderr). Needs root, nmbd, nft, nmap.
#   sudo bench/probe.sh                       (3 rounds, about 5 minutes on an idle machine)
#   sudo bench/probe.sh --runs 1 --tools nbdgm,nmap-pn --verbose --save-dir /tmp/probe-bench
#   sudo bench/probe.sh --tools nbdgm,nbdgm-fast,nmap-noarp --scanner-icmp-burst 1000
#   sudo bench/probe.sh --runs 5 --tools nbdgm,nmap,nbdgm-nodisc     (issue 16: discovery vs nmap's ARP ping;
#                                                 nbdgm-nodisc = --no-discovery, every address probed)
#   sudo bench/probe.sh --runs 3 --tools nbdgm,nmap,nbdgm-unpriv     (nbdgm-unpriv = under setpriv without
#                                                 CAP_NET_RAW: discovery through the kernel's neighbour table)
# Every tool run is bounded (--max-secs) and stopped by PID; every process the lab starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p nbdgm -p nbdgm-bench
bin="$CARGO_TARGET_DIR/release"
nmap_bin="${NMAP:-/usr/bin/nmap}"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $(rustc --version)" >&2
echo "nbdgm: $("$bin/nbdgm" --version 2>/dev/null || echo '?')   $("$nmap_bin" --version 2>/dev/null | head -1)" \
     "  nmbd: $(/usr/sbin/nmbd --version 2>/dev/null || echo 'not installed')   $(nft --version 2>/dev/null)" >&2
exec "$bin/probe_bench" --nbdgm "$bin/nbdgm" --nmap "$nmap_bin" "$@"
