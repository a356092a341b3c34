#!/usr/bin/env bash
# Monitor fleet benchmark (benchmark, never a test), issue 16 §4: 1, 2 and 4 `nbdgm monitor run`
# instances on one PostgreSQL store split 12,282 loopback targets (three checks of 127.{1,2,3}.0.0/20,
# the default ports 137/udp, 138/udp, 139/tcp, 445/tcp, timeout 1 s, no retries, concurrency 256) in chunks of 64. Everything runs inside
# one network namespace this script creates and removes (nbdgm-fleet-PID), whose ICMP rate limit it
# sets itself (net.ipv4.icmp_ratelimit=0, icmp_msgs_per_sec and icmp_msgs_burst 1000000), with a
# private PostgreSQL cluster (initdb as nobody, default settings, fsync on) on the namespace's
# 127.0.0.1. A warm-up with 4 instances confirms every key's baseline (one transaction per key); then, on
# the same store, for each instance count the first cycle that starts after its instances run is
# measured (the steady state): targets per second, cycle time (first claim to last chunk stored), rows
# written per second and commits per second (pg_stat_database), CPU seconds of PostgreSQL (postmaster,
# backends, exited children) and of the instances over the cycle; then, with 2 and 4 instances, the
# owner of an unfinished claim is killed with SIGKILL and the time until another instance has stored
# every chunk it held is reported (the lease is a quarter of the interval), and results stored twice
# for one (target, cycle) are counted (expected: 0). Markdown on stdout, progress on stderr.
#   sudo bench/fleet.sh                         (interval 30 s; about 6 minutes)
#   sudo INSTANCES="1 2" INTERVAL=20 bench/fleet.sh
# Every process it starts is stopped by PID; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q -p nbdgm
bin="$CARGO_TARGET_DIR/release/nbdgm"
INSTANCES="${INSTANCES:-1 2 4}"
INTERVAL="${INTERVAL:-30}"
CHUNK="${CHUNK:-64}"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
ns="nbdgm-fleet-$$"
work=$(mktemp -d /tmp/nbdgm-fleet.XXXXXX)
keep="/tmp/nbdgm-fleet-logs-$$" # the instances' and PostgreSQL's logs are kept here
pg_pid=""
pids=()
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ -n "$pg_pid" ]; then
        kill -INT "$pg_pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pg_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    mkdir -p "$keep" && cp "$work"/*.log "$keep"/ 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
psql_q() { in_ns psql -qAt -h 127.0.0.1 -p 5432 -U postgres -d "$1" -c "$2"; }
cpu_of() { # utime+stime in clock ticks of the PIDs given
    local s=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$s"
}
# PostgreSQL: the postmaster with its exited children (cutime, cstime) and its live backends.
pg_cpu() {
    echo $(($(awk '{print $14 + $15 + $16 + $17}' "/proc/$pg_pid/stat") + $(cpu_of $(pgrep -P "$pg_pid" || true))))
}
hz=$(getconf CLK_TCK)

ip netns add "$ns"
in_ns ip link set lo up
in_ns sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000
chown nobody: "$work"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$pgbin/initdb" -D "$work/pg" -A trust -U postgres \
    -E UTF8 >/dev/null
ip netns exec "$ns" setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$pgbin/postgres" -D "$work/pg" \
    -h 127.0.0.1 -p 5432 -k "$work" -c max_connections=100 >"$work/pg.log" 2>&1 &
pg_pid=$!
for _ in $(seq 100); do psql_q postgres "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
log "postgres $pg_pid up; busy: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)   cores: $(nproc)   kernel: $(uname -r)   $("$pgbin/postgres" --version)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)   interval ${INTERVAL}s, chunk $CHUNK, 12282 targets × 4 ports"
echo
echo "| instances | targets | cycle time s | targets/s | rows written/s | commits/s | PostgreSQL CPU s | instances CPU s | take-over after kill -9 s | stored twice |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

config() { # db instance (its loop variable is local: the caller's $i names the instance)
    local i
    cat <<EOF
[store]
url = "postgres://postgres@127.0.0.1:5432/$1"
instance = "$2"
chunk = $CHUNK
retention_days = 0
EOF
    for i in 1 2 3; do
        cat <<EOF
[[check]]
name = "c$i"
targets = ["127.$i.0.0/20"]
interval = "${INTERVAL}s"
timeout = "1s"
retries = 0
rate = 1000000
concurrency = 256
EOF
    done
}

wait_sql() { # db sql limit_s: until sql prints something non-empty
    local end=$((SECONDS + $3)) out
    while [ $SECONDS -lt $end ]; do
        out=$(psql_q "$1" "$2" 2>/dev/null || true)
        if [ -n "$out" ]; then echo "$out"; return 0; fi
        sleep 0.2
    done
    return 1
}

db=fleet
psql_q postgres "CREATE DATABASE $db"
start_instances() { # n: starts i0..i(n-1) (ip netns exec execs the binary: $! is the instance)
    pids=()
    for i in $(seq 0 $(($1 - 1))); do
        config "$db" "i$i" >"$work/i$i.toml"
        ip netns exec "$ns" "$bin" monitor run --config "$work/i$i.toml" 2>>"$work/i$i.log" &
        pids+=($!)
    done
    sleep 2
    for i in $(seq 0 $(($1 - 1))); do # an instance that exited at start-up says why
        kill -0 "${pids[$i]}" 2>/dev/null && continue
        log "instance i$i exited at start-up: $(head -c 500 "$work/i$i.log")"; exit 1
    done
}
stop_instances() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
now_cycle() { echo $(($(psql_q "$db" "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint") / (INTERVAL * 1000))); }
chunks_total=$(( 3 * ((4094 + CHUNK - 1) / CHUNK) ))
complete="HAVING COUNT(*) = $chunks_total AND SUM(1 - done) = 0"
# Warm-up: the first two observations of every key confirm its baseline, one committed change per
# key (about 61,000 transactions); measured cycles are the steady state after it. 4 instances, one
# database for every instance count (the store keeps the baselines).
start_instances 4
log "warm-up with 4 instances: ${pids[*]}"
changes_prev=-1
warm_end=$((SECONDS + ${WARMUP_MAX:-900}))
while [ $SECONDS -lt $warm_end ]; do
    c=$(now_cycle)
    wait_sql "$db" "SELECT 1 FROM claims WHERE cycle = $c $complete" $((INTERVAL + 30)) >/dev/null || true
    changes=$(psql_q "$db" "SELECT COUNT(*) FROM changes")
    log "warm-up: cycle $c, changes $changes"
    [ "$changes" = "$changes_prev" ] && break
    changes_prev=$changes
    sleep $((INTERVAL / 2))
done
stop_instances
for n in $INSTANCES; do
    start_instances "$n"
    log "$n instance(s): ${pids[*]}"
    # Measure the first cycle that starts after all instances run.
    c1=$(($(now_cycle) + 1))
    wait_sql "$db" "SELECT 1 FROM claims WHERE cycle = $c1 LIMIT 1" $((INTERVAL * 2 + 30)) >/dev/null || true
    stats="SELECT tup_inserted + tup_updated + tup_deleted, xact_commit FROM pg_stat_database WHERE datname = '$db'"
    read -r rows0 commits0 < <(psql_q "$db" "$stats" | tr '|' ' ')
    pg0=$(pg_cpu); in0=$(cpu_of "${pids[@]}"); t0=$(date +%s.%N)
    wait_sql "$db" "SELECT 1 FROM claims WHERE cycle = $c1 $complete" $((INTERVAL + 30)) >/dev/null \
        || log "cycle $c1 not complete in time"
    t1=$(date +%s.%N); pg1=$(pg_cpu); in1=$(cpu_of "${pids[@]}")
    sleep 1 # statistics are flushed by the backends within a second
    read -r rows1 commits1 < <(psql_q "$db" "$stats" | tr '|' ' ')
    read -r span targets < <(psql_q "$db" "SELECT (MAX(done_ms) - MIN(claimed_ms)) / 1000.0, \
        (SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id WHERE u.cycle = $c1 AND r.port = 'host') \
        FROM claims WHERE cycle = $c1" | tr '|' ' ')
    wall=$(echo "$t1 - $t0" | bc -l)
    takeover="-"
    if [ "$n" -ge 2 ]; then
        # Kill the owner of an unfinished claim of a later cycle.
        claim=$(wait_sql "$db" "SELECT owner, cycle, chunk, check_name FROM claims WHERE cycle > $c1 AND done = 0 \
            AND owner <> '' LIMIT 1" $((INTERVAL * 2 + 30)) | head -1) || true
        IFS='|' read -r owner kc kk kn <<<"$claim" || true
        if [ -z "${owner:-}" ]; then
            takeover="no claim seen"
        else
            victim=${pids[${owner#i}]}
            tkill=$(psql_q "$db" "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")
            kill -9 "$victim"
            # The chunks it held when it died (it may have finished the one seen above meanwhile).
            held=$(psql_q "$db" "SELECT string_agg(format('(%L,%s,%s)', check_name, cycle, chunk), ',') \
                FROM claims WHERE owner = '$owner' AND done = 0")
            log "killed $owner ($victim) holding ${held:-nothing}"
            done_ms=""
            [ -n "$held" ] && done_ms=$(wait_sql "$db" "SELECT MAX(done_ms) FROM claims \
                WHERE (check_name, cycle, chunk) IN ($held) HAVING MIN(done) = 1" $((INTERVAL * 2 + 30)) || echo "")
            if [ -z "$held" ]; then
                takeover="held nothing"
            elif [ -n "$done_ms" ]; then
                takeover=$(echo "($done_ms - $tkill) / 1000" | bc -l | xargs printf '%.1f')
            else
                takeover="not in time"
            fi
        fi
    fi
    twice=$(psql_q "$db" "SELECT COUNT(*) FROM (SELECT 1 FROM results r JOIN runs u ON u.id = r.run_id \
        WHERE r.port = 'host' GROUP BY r.check_name, r.target, u.cycle HAVING COUNT(*) > 1) d")
    printf '| %s | %s | %.1f | %.0f | %.0f | %.0f | %.1f | %.1f | %s | %s |\n' "$n" "$targets" "$span" \
        "$(echo "$targets / $span" | bc -l)" "$(echo "($rows1 - $rows0) / $wall" | bc -l)" \
        "$(echo "($commits1 - $commits0) / $wall" | bc -l)" "$(echo "($pg1 - $pg0) / $hz" | bc -l)" \
        "$(echo "($in1 - $in0) / $hz" | bc -l)" "$takeover" "$twice"
    stop_instances
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
