#!/usr/bin/env bash
# Runs every issue-#2 workload RUNS times (default 5) and prints each RESULT line and the
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
        values+=("$(echo "$line" | grep -o "$field=[0-9]*" | cut -d= -f2)")
    done
    echo "MEDIAN $label $field=$(printf '%s\n' "${values[@]}" | median)"
}

for p in 1 2; do
    run "wordcount p=$p" words_per_sec wordcount --input "$text" --parallelism "$p"
    run "keyed-sum p=$p" events_per_sec keyed-sum --events 100000000 --keys 100000 --parallelism "$p"
    run "grep p=$p" events_per_sec grep --input "$text" --pattern qqq --parallelism "$p"
done
