#!/usr/bin/env bash
# Runs every issue-#2, #3, #4 and #5 workload RUNS times (default 5) and prints each RESULT line and the
# median events/s (and words/s) per workload. Usage: crates/sluice-bench/run-all.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
cargo build --release -p sluice-bench
bench=target/release/sluice-bench
text=bench-data/zipf.txt
[ -f "$text" ] || { mkdir -p bench-data; "$bench" gen-text --lines 2000000 --output "$text"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run() {
    local label=$1 field=$2; shift 2
    local values=()
    for _ in $(seq "$runs"); do
        line=$("$bench" "$@" 2>/dev/null | grep '^RESULT')
        echo "$line"
        values+=("$(echo "$line" | grep -o "$field=[0-9.]*" | cut -d= -f2)")
    done
    echo "MEDIAN $label $field=$(printf '%s\n' "${values[@]}" | median)"
}

for p in 1 2; do
    run "wordcount p=$p" words_per_sec wordcount --input "$text" --parallelism "$p"
    run "keyed-sum p=$p" events_per_sec keyed-sum --events 100000000 --keys 100000 --parallelism "$p"
    run "grep p=$p" events_per_sec grep --input "$text" --pattern qqq --parallelism "$p"
done
for p in 1 2; do
    run "window p=$p" events_per_sec window --events 50000000 --keys 100000 --parallelism "$p"
done
run "window-general p=1" events_per_sec window --events 50000000 --keys 100000 --allowed-lateness-ms 1
run "sliding p=1" events_per_sec sliding --events 50000000 --keys 100000
run "session p=1" events_per_sec session --events 50000000 --keys 100000
for rate in 1000000 9000000; do
    run "latency rate=$rate p=1" p99_ms latency --rate "$rate" --seconds 5
done
# Issue #4: checkpoints.
run "window p=1 checkpoints 1s" events_per_sec --checkpoint-interval-ms 1000 window --events 200000000 --keys 100000
run "window p=1 unaligned checkpoints 1s" events_per_sec --checkpoint-interval-ms 1000 --unaligned window --events 200000000 --keys 100000
run "recovery 1M keys p=1" recovery_ms recovery --keys 1000000
run "latency rate=1000000 checkpoints 1s" p99_ms --checkpoint-interval-ms 1000 latency --rate 1000000 --seconds 5
# Issue #5: Kafka against the local test broker.
"$bench" kafka --messages 1000000 --parallelism 2 2>/dev/null | grep '^RESULT'
