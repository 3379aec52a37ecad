#!/bin/sh
# Issue 17's before/after, in one run: each benchmark on the code before the resident guard
# (BEFORE, a commit) and on this checkout's code with the guard up (GITSWARM_BENCH_GUARD=1), one
# after the other, each from a snapshot of its commit (git archive) so that nothing changes under
# a run. Output: one log per run in OUT, the machine's load before each run in OUT/load, and
# OUT/speed-ab.md: the per-push rows of both sides, alternated (benchmarks/abtable.py).
#
#   flock /tmp/gitswarm-bench.lock sh benchmarks/speed_all.sh 13bdbcb HEAD /tmp/speed-out [quick]
#   BEFORE_GUARD=1 flock ... sh benchmarks/speed_all.sh 55af030 HEAD /tmp/speed-out   # both with the guard
#
# The swarm row (N = 256, 30 s agents) runs last: it is the long one.
set -eu
BEFORE=$1 AFTER=$2 OUT=$3 QUICK=${4:-}
PY=${PYTHON:-python}
mkdir -p "$OUT"
. "$(dirname "$0")/snapshots.sh"
snap "$BEFORE" "$OUT/before"
snap "$AFTER" "$OUT/after"
run() {  # run NAME before|after SCRIPT ARGS...: the guard up after, down before (up on both sides
  # with BEFORE_GUARD=1: BEFORE then has a guard too)
  if [ "$2" = after ] || [ "${BEFORE_GUARD:-0}" = 1 ]; then g=1; else g=0; fi
  _name=$1 _side=$2
  shift 2
  run_on "$_name" "$_side" $g "$@"
}
if [ -n "$QUICK" ]; then n=8; c=10; else n=20; c=40; fi
for side in before after; do run part1 $side claims.py --claimers 1 --layouts group-1p --budget 20 --tasks 40; done
for side in before after; do run hooks $side hooks.py --tasks 1000 --runs $n; done
run speed after speed.py --runs $n
# The per-push rows on both sides' code, measured by AFTER's speed.py (the guard up, the C client),
# alternated three rounds: the machine's load drifts over a run. Table: OUT/speed-ab.md.
for side in before after; do cp "$OUT/after/benchmarks/speed.py" "$OUT/$side/benchmarks/speed_ab.py"; done
for r in 1 2 3; do for side in before after; do run_on speed-ab$r $side 1 speed_ab.py --runs $n --modes guard; done; done
"$PY" "$OUT/after/benchmarks/abtable.py" "$OUT" > "$OUT/speed-ab.md" || true
for side in before after; do run claimers $side claims.py --skip-pushes --claimers 1,64 --layouts group-1p,group-4p; done
for side in before after; do run transports $side transports.py --transports ssh,http --claims $c --group-claims 60; done
[ -n "$QUICK" ] && exit 0
for side in before after; do run swarm $side swarm.py --workers 256 --agent-time 30 --designs gitswarm \
  --json "$OUT/swarm-$side.json" --results "$OUT/swarm-$side.md" --plot "$OUT/swarm-$side.png"; done
