#!/usr/bin/env bash
# Runs a Nexmark query from the generator embedded and on a local cluster of a coordinator
# and two workers (one slot each, parallelism 2: every shuffle crosses the data plane),
# and prints the events/s of both. Build first: cargo build --release -p sluice
#   bench/cluster/nexmark.sh q5 10000000
set -euo pipefail
cd "$(dirname "$0")/../.."
query=${1:-q5}
events=${2:-10000000}
S=target/release/sluice
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
echo "SET 'parallelism.default' = '2';" > "$work/settings.sql"
files=("$work/settings.sql" sql/nexmark/ddl_gen.sql sql/nexmark/ddl_views.sql "sql/nexmark/$query.sql")
defs=(-D TPS=10000000 -D EVENTS_NUM="$events" -D PERSON_PROPORTION=1 -D AUCTION_PROPORTION=3
      -D BID_PROPORTION=46 -D SINK=blackhole)

embedded=$("$S" sql "${files[@]}" "${defs[@]}" 2>&1 | sed -n 's/job finished in \([0-9.]*\) s.*/\1/p')
echo "embedded: $events events in $embedded s: $(python3 -c "print(round($events / $embedded))") events/s"

"$S" coordinator --listen 127.0.0.1:0 --state-dir "$work/state" > "$work/coordinator.out" 2> "$work/coordinator.log" &
until grep -q listening "$work/coordinator.out"; do sleep 0.1; done
addr=$(sed -n 's/coordinator listening on //p' "$work/coordinator.out")
for i in 1 2; do "$S" worker --coordinator "$addr" --slots 1 2> "$work/worker-$i.log" & done
sleep 1
start=$(date +%s.%N)
"$S" submit --coordinator "$addr" "${files[@]}" "${defs[@]}" > /dev/null 2>&1
until "$S" list --coordinator "$addr" | grep -qE 'Finished|Failed|Cancelled'; do sleep 0.05; done
end=$(date +%s.%N)
"$S" list --coordinator "$addr" | tail -1
secs=$(python3 -c "print(round($end - $start, 2))")
echo "cluster (2 workers): $events events in $secs s (submit to finish): $(python3 -c "print(round($events / $secs))") events/s"
