#!/bin/sh
# Issue 17's group commit backoff, before and after in one run: the swarm row (N = 256, 30 s
# agents, twice each side, interleaved) and claims.py's contention rows (single claimer, 32 and 64
# claimers in 1 and 4 processes, 32 naive claimers), each from a snapshot of its commit (git
# archive), the resident guard up on both sides. Output: one log per run in OUT, the machine's
# load before each run in OUT/load.
#
#   flock /tmp/gitswarm-bench.lock sh benchmarks/backoff_all.sh 2962114 HEAD /tmp/backoff-out
set -eu
BEFORE=$1 AFTER=$2 OUT=$3
PY=${PYTHON:-python}
mkdir -p "$OUT"
snap() {  # as in speed_all.sh: the commit's hooks, schema and prompts where an installed gitswarm has them
  rm -rf "$2" && mkdir -p "$2" && git archive "$1" | tar -x -C "$2"
  cp -r "$2/hooks" "$2/gitswarm/hooks" && cp -r "$2/tasks" "$2/gitswarm/schema" &&
    cp -r "$2/prompts" "$2/gitswarm/prompt_templates"
}
snap "$BEFORE" "$OUT/before"
snap "$AFTER" "$OUT/after"
run() {  # run NAME before|after SCRIPT ARGS...
  name=$1 side=$2 script=$3
  shift 3
  echo "$(date -u +%H:%M:%S) $name $side: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load"
  (cd "$OUT/$side" && PYTHONPATH="$OUT/$side" GITSWARM_BENCH_GUARD=1 \
     "$PY" "benchmarks/$script" "$@" > "$OUT/$name-$side.log" 2>&1) || echo "  $name $side: exit $?" | tee -a "$OUT/load"
}
for i in 1 2; do
  for side in before after; do run swarm$i $side swarm.py --workers 256 --agent-time 30 --designs gitswarm \
    --json "$OUT/swarm$i-$side.json" --results "$OUT/swarm$i-$side.md" --plot "$OUT/swarm$i-$side.png"; done
done
for side in before after; do run claims $side claims.py --skip-pushes --claimers 1,32,64 \
  --layouts group-1p,group-4p,naive --naive-max 32 --json "$OUT/claims-$side.json"; done
echo "$(date -u +%H:%M:%S) done: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load"
