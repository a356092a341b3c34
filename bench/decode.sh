#!/usr/bin/env bash
# Decode benchmark (a benchmark, never a test): one generated capture of N mixed NetBIOS datagrams, decoded by
# nbdgm (NDJSON with the default threads and with one, and text) and by tshark (-T json and -T fields) in the
# same run. Prints packets/s and ratios.
#   bench/decode.sh [COUNT]            (default 1000000)
# Set KEEP=1 to keep the capture in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
command -v tshark >/dev/null || { echo "tshark is required (apt-get install tshark)" >&2; exit 2; }
cargo build --release -q -p nbdgm -p nbdgm-corpus
nbdgm=target/release/nbdgm
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cap=$work/bench.pcap
target/release/nbdgm-corpus --count "$count" --seed 42 --mix realistic -o "$cap"

# seconds for one command; stdout to /dev/null
measure() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }' 
}

fields=(-e frame.number -e nbdgm.type -e nbdgm.first -e nbdgm.node_type -e nbdgm.dgram_id -e nbdgm.src.ip
        -e nbdgm.source_name -e nbdgm.destination_name -e mailslot.name -e browser.command -e browser.server
        -e browser.os_major -e browser.server_type -e nbns.id -e nbns.name)

declare -A t
t[ndjson]=$(measure "$nbdgm" decode --format ndjson --no-progress "$cap")
t[ndjson_1thread]=$(measure "$nbdgm" decode --format ndjson --no-progress --threads 1 "$cap")
t[text]=$(measure "$nbdgm" decode --format text --no-progress "$cap")
t[tshark_json]=$(measure tshark -n -r "$cap" -T json)
t[tshark_fields]=$(measure tshark -n -r "$cap" -T fields "${fields[@]}")

pps() { awk -v n="$count" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
echo "packets: $count   capture: $(du -h "$cap" | cut -f1)   $(tshark --version | head -1)   $(nproc) cores"
printf '%-34s %10s %14s\n' "decoder" "seconds" "packets/s"
for k in ndjson ndjson_1thread text tshark_json tshark_fields; do
  printf '%-34s %10.2f %14s\n' "$k" "${t[$k]}" "$(pps "${t[$k]}")"
done
echo "speed-up nbdgm ndjson vs tshark -T json   : $(ratio "${t[tshark_json]}" "${t[ndjson]}")x"
echo "speed-up nbdgm ndjson, 1 thread, vs tshark -T json : $(ratio "${t[tshark_json]}" "${t[ndjson_1thread]}")x"
echo "speed-up nbdgm text   vs tshark -T fields : $(ratio "${t[tshark_fields]}" "${t[text]}")x"
echo "speed-up nbdgm ndjson vs tshark -T fields : $(ratio "${t[tshark_fields]}" "${t[ndjson]}")x"
