#!/usr/bin/env bash
# Decode benchmark (a benchmark, never a test): one generated capture of N mixed NetBIOS datagrams, decoded by
# nbdgm (NDJSON with the default threads and with one, and text) and by tshark (-T json and -T fields) in the
# same run. Prints packets/s, peak RSS (with GNU time at /usr/bin/time), ratios and the load average.
#   bench/decode.sh [COUNT]            (default 1000000)
# Set KEEP=1 to keep the capture in $TMPDIR; NBDGM=path times that nbdgm binary instead of the fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
command -v tshark >/dev/null || { echo "tshark is required (apt-get install tshark)" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p nbdgm -p nbdgm-corpus   # NO_BUILD=1: use target/release as is
nbdgm=${NBDGM:-target/release/nbdgm}   # NBDGM=/path/to/nbdgm compares another build
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cap=$work/bench.pcap
target/release/nbdgm-corpus --count "$count" --seed 42 --mix realistic -o "$cap"

# seconds for one command; stdout to /dev/null; peak RSS (KB) to $work/KEY.rss
measure() {
  local key=$1 start end
  shift
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o "$work/$key.rss" "$@" >/dev/null
  else
    "$@" >/dev/null
  fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }' 
}

fields=(-e frame.number -e nbdgm.type -e nbdgm.first -e nbdgm.node_type -e nbdgm.dgram_id -e nbdgm.src.ip
        -e nbdgm.source_name -e nbdgm.destination_name -e mailslot.name -e browser.command -e browser.server
        -e browser.os_major -e browser.server_type -e nbns.id -e nbns.name)

declare -A t
t[ndjson]=$(measure ndjson "$nbdgm" decode --format ndjson --no-progress "$cap")
t[ndjson_1thread]=$(measure ndjson_1thread "$nbdgm" decode --format ndjson --no-progress --threads 1 "$cap")
t[text]=$(measure text "$nbdgm" decode --format text --no-progress "$cap")
t[tshark_json]=$(measure tshark_json tshark -n -r "$cap" -T json)
t[tshark_fields]=$(measure tshark_fields tshark -n -r "$cap" -T fields "${fields[@]}")

pps() { awk -v n="$count" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
rss() { [ -s "$work/$1.rss" ] && awk '{ printf "%.1f", $1 / 1024 }' "$work/$1.rss" || echo "-"; }
echo "packets: $count   capture: $(du -h "$cap" | cut -f1)   $(tshark --version | head -1)   $(nproc) cores"
printf '%-34s %10s %14s %14s\n' "decoder" "seconds" "packets/s" "peak RSS MB"
for k in ndjson ndjson_1thread text tshark_json tshark_fields; do
  printf '%-34s %10.2f %14s %14s\n' "$k" "${t[$k]}" "$(pps "${t[$k]}")" "$(rss "$k")"
done
echo "speed-up nbdgm ndjson vs tshark -T json   : $(ratio "${t[tshark_json]}" "${t[ndjson]}")x"
echo "speed-up nbdgm ndjson, 1 thread, vs tshark -T json : $(ratio "${t[tshark_json]}" "${t[ndjson_1thread]}")x"
echo "speed-up nbdgm text   vs tshark -T fields : $(ratio "${t[tshark_fields]}" "${t[text]}")x"
echo "speed-up nbdgm ndjson vs tshark -T fields : $(ratio "${t[tshark_fields]}" "${t[ndjson]}")x"
echo "load average after the run: $(cut -d" " -f1-3 /proc/loadavg)"
