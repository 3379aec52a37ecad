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
. "$(dirname "$0")/snapshots.sh"
snap "$BEFORE" "$OUT/before"
snap "$AFTER" "$OUT/after"
run() {  # run NAME before|after SCRIPT ARGS...: the guard up on both sides
  _name=$1 _side=$2
  shift 2
  run_on "$_name" "$_side" 1 "$@"
}
for i in 1 2; do
  for side in before after; do run swarm$i $side swarm.py --workers 256 --agent-time 30 --designs gitswarm \
    --json "$OUT/swarm$i-$side.json" --results "$OUT/swarm$i-$side.md" --plot "$OUT/swarm$i-$side.png"; done
done
for side in before after; do run claims $side claims.py --skip-pushes --claimers 1,32,64 \
  --layouts group-1p,group-4p,naive --naive-max 32 --json "$OUT/claims-$side.json"; done
echo "$(date -u +%H:%M:%S) done: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load"
