#!/usr/bin/env bash
# `nbdgm watch` benchmarks (benchmarks, never tests; issue 14 §5). Three parts:
#   read   `nbdgm watch --read` (every detector on) against `nbdgm decode --format ndjson` (default threads and
#          --threads 1) on the same realistic corpus of bench/decode.sh (nbdgm-corpus --mix realistic --seed 42),
#          output to /dev/null, RUNS runs each interleaved, median seconds; peak RSS; alert counts from --stats
#   live   a veth pair between two network namespaces of this script (203.0.113.0/24): `nbdgm watch
#          --interface` in one, `watch_bench send` in the other replaying the corpus' port 137/138 payloads as
#          broadcasts at RATE datagrams/s for SECS seconds (bounded count); kernel received/dropped, engine
#          packets, CPU time and peak RSS of watch
#   flood  a pcap of FLOOD packets with unique names, hosts (10.0.0.0/8, file only) and transaction ids read by
#          watch in prefixes of 25/50/75/100 %: peak RSS and table sizes once the caps are full
# Needs root (namespaces, for `live`), iproute2, jq, GNU time (/usr/bin/time).
#   bench/watch.sh [all|read|live|flood]    (default all; about 4 minutes on 2 cores)
# Environment: COUNT=1000000 RUNS=3 RATE=100000 SECS=10 FLOOD=2000000; KEEP=1 keeps the work directory;
# NO_BUILD=1 uses the release binaries in target/ as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
count=${COUNT:-1000000}
runs=${RUNS:-3}
rate=${RATE:-100000}
secs=${SECS:-10}
flood=${FLOOD:-2000000}
case $what in all | read | live | flood) ;; *) echo "usage: $0 [all|read|live|flood]" >&2; exit 2 ;; esac
for c in jq ip; do command -v "$c" >/dev/null || { echo "$c is required" >&2; exit 2; }; done
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 2; }
if [ "$what" = all ] || [ "$what" = live ]; then
  [ "$(id -u)" = 0 ] || { echo "live needs root (network namespaces)" >&2; exit 2; }
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p nbdgm -p nbdgm-bench -p nbdgm-corpus
bin="$CARGO_TARGET_DIR/release"
nbdgm="$bin/nbdgm"

work=$(mktemp -d)
ns_a="nbwatch-a-$$"
ns_b="nbwatch-b-$$"
watch_pid=""
cleanup() {
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $(rustc --version)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')   load: $(cut -d' ' -f1-3 /proc/loadavg)"

cap=$work/corpus.pcap
if [ "$what" != flood ]; then
  "$bin/nbdgm-corpus" --count "$count" --seed 42 --mix realistic -o "$cap" >&2
fi

# timed NAME CMD...: runs CMD (stdout to /dev/null, stderr to $work/NAME.err) under GNU time; appends
# "seconds maxrss_kb user_s sys_s" to $work/NAME.times
timed() {
  local name=$1
  shift
  # exit 1 = alerts at or above --fail-on (the realistic corpus has some): not a failure here
  /usr/bin/time -f '%e %M %U %S' -o "$work/$name.t" "$@" >/dev/null 2>"$work/$name.err" || [ $? -le 1 ] ||
    { echo "failed: $* ($(tail -3 "$work/$name.err"))" >&2; exit 1; }
  tail -1 "$work/$name.t" >>"$work/$name.times"  # GNU time may put "Command exited with ..." first
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" '{ print $c }' "$work/$1.times"; }
# The corpus' four subnets as local networks, so that the off-subnet check runs too (every detector on).
localnets=(--local-net 192.168.1.0/24 --local-net 10.0.0.0/24 --local-net 198.51.100.0/24 --local-net 172.16.5.0/24)

if [ "$what" = all ] || [ "$what" = read ]; then
  echo
  echo "## read: $count packets, $(du -h "$cap" | cut -f1), median of $runs runs (interleaved), output /dev/null"
  for _ in $(seq "$runs"); do
    timed decode "$nbdgm" decode --format ndjson --no-progress "$cap"
    timed decode_1t "$nbdgm" decode --format ndjson --no-progress --threads 1 "$cap"
    timed watch "$nbdgm" watch --read "$cap" "${localnets[@]}" --format ndjson --output /dev/null --no-progress
  done
  timed watch_stats "$nbdgm" watch --read "$cap" "${localnets[@]}" --format ndjson --output /dev/null --no-progress --stats
  printf '| %-44s | %7s | %10s | %9s | %8s |\n' command seconds packets/s "CPU s" "RSS MB"
  printf '| %-44s | %7s | %10s | %9s | %8s |\n' --- ---: ---: ---: ---:
  declare -A pps
  for k in decode decode_1t watch watch_stats; do
    s=$(col "$k" 1 | median)
    cpu=$(awk '{ print $3 + $4 }' "$work/$k.times" | median)
    rss=$(col "$k" 2 | sort -n | tail -1)
    pps[$k]=$(awk -v n="$count" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
    case $k in
      decode) label='decode --format ndjson (default threads)' ;;
      decode_1t) label='decode --format ndjson --threads 1' ;;
      watch) label='watch --read --format ndjson' ;;
      watch_stats) label='watch --read --format ndjson --stats (1 run)' ;;
    esac
    printf '| %-44s | %7.2f | %10s | %9.2f | %8.1f |\n' "$label" "$s" "${pps[$k]}" "$cpu" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
  done
  echo "watch / decode (default threads): $(awk -v a="${pps[watch]}" -v b="${pps[decode]}" 'BEGIN { printf "%.1f %%", 100 * a / b }')"
  echo "watch / decode --threads 1      : $(awk -v a="${pps[watch]}" -v b="${pps[decode_1t]}" 'BEGIN { printf "%.1f %%", 100 * a / b }')"
  echo "watch per CPU-second            : $(awk -v n="$count" -v c="$(awk '{ print $3 + $4 }' "$work/watch.times" | median)" 'BEGIN { printf "%.0f packets/s", n / c }')"
  jq -c '{counters: .counters, names: .tables.names, alert_keys: .tables.alert_keys}' "$work/watch_stats.err" 2>/dev/null ||
    cat "$work/watch_stats.err"
fi

if [ "$what" = all ] || [ "$what" = live ]; then
  echo
  echo "## live: veth pair, $rate datagrams/s for $secs s of port 137/138 payloads from the corpus"
  va="nbwa$$"
  vb="nbwb$$"
  ip netns add "$ns_a"
  ip netns add "$ns_b"
  ip link add "$va" type veth peer name "$vb"
  ip link set "$va" netns "$ns_a"
  ip link set "$vb" netns "$ns_b"
  ip -n "$ns_a" addr add 203.0.113.1/24 broadcast 203.0.113.255 dev "$va"
  ip -n "$ns_b" addr add 203.0.113.2/24 broadcast 203.0.113.255 dev "$vb"
  for n in "$ns_a" "$ns_b"; do ip -n "$n" link set lo up; done
  ip -n "$ns_a" link set "$va" up
  ip -n "$ns_b" link set "$vb" up
  sleep 1
  ip netns exec "$ns_b" /usr/bin/time -f '%e %M %U %S' -o "$work/live.t" \
    "$nbdgm" watch --interface "$vb" --duration "$((secs + 8))s" --stats --format ndjson --output /dev/null \
    --no-progress 2>"$work/live.err" &
  watch_pid=$!
  sleep 2
  ip netns exec "$ns_a" /usr/bin/time -f '%e %U %S' -o "$work/send.t" "$bin/watch_bench" send --corpus "$cap" --src 203.0.113.1 --dst 203.0.113.255 \
    --rate "$rate" --count "$((rate * secs))" --max-secs "$((secs + 5))" >"$work/send.json"
  wait "$watch_pid" || true
  watch_pid=""
  sent=$(jq .sent "$work/send.json")
  echo "sender: $(cat "$work/send.json")   CPU s (user sys): $(tail -1 "$work/send.t" | cut -d' ' -f2-)"
  echo "veth rx (watcher side): $(ip -n "$ns_b" -s -j link show "$vb" | jq -c '.[0].stats64.rx | {packets, dropped}')"
  read -r el rss user sys < <(tail -1 "$work/live.t")
  jq -s -c --arg sent "$sent" --arg rss "$rss" --arg cpu "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" '
    (map(select(.capture))[0].capture) as $c | (map(select(.counters))[0]) as $e |
    {sent: ($sent | tonumber), kernel_received: $c.received, kernel_dropped: $c.dropped, if_dropped: $c.if_dropped,
     frames_read: $c.frames, engine_packets: $e.counters.packets, engine_nbns: $e.counters.nbns,
     engine_datagram: $e.counters.datagram, alerts: $e.counters.alerts,
     watch_cpu_s: ($cpu | tonumber), watch_peak_rss_mb: (($rss | tonumber) / 1024 * 10 | round / 10)}' \
    "$work/live.err" || cat "$work/live.err"
  echo "(watch ran $el s wall: 2 s before the sender, about $secs s of traffic, the rest idle)"
fi

if [ "$what" = all ] || [ "$what" = flood ]; then
  echo
  echo "## flood: $flood packets of unique names / hosts / transaction ids, read in prefixes"
  fcap=$work/flood.pcap
  "$bin/watch_bench" flood-pcap --count "$flood" -o "$fcap" >"$work/flood.json"
  echo "| share | packets | peak RSS MB | names | queries | responders | browser hosts | workgroups | inventory | alert keys | alerts |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for n in $(jq -r '.offsets | keys[]' "$work/flood.json" | sort -n); do
    off=$(jq -r --arg n "$n" '.offsets[$n]' "$work/flood.json")
    head -c "$off" "$fcap" | /usr/bin/time -f '%M' -o "$work/flood.t" \
      "$nbdgm" watch --read - --local-net 10.0.0.0/8 --format ndjson --output /dev/null --no-progress --stats 2>"$work/flood.err" ||
      true
    jq -r --arg n "$n" --arg all "$flood" --arg rss "$(tail -1 "$work/flood.t")" '
      def t(x): "\(x.len) (\(x.evicted) ev.)";
      "| \(($n | tonumber) * 100 / ($all | tonumber)) % | \($n) | \(($rss | tonumber) / 1024 * 10 | round / 10) | \(t(.tables.names)) | \(t(.tables.poison.queries)) | \(t(.tables.poison.hosts)) | \(t(.tables.browser.hosts)) | \(t(.tables.browser.workgroups)) | \(t(.tables.inventory)) | \(t(.tables.alert_keys)) | \(.counters.alerts) |"' \
      "$work/flood.err" || cat "$work/flood.err"
  done
fi
