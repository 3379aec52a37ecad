#!/bin/sh
# Issue 17's before/after, in one run: each benchmark on the code before the resident guard
# (BEFORE, a commit) and on this checkout's code with the guard up (GITSWARM_BENCH_GUARD=1), one
# after the other, each from a snapshot of its commit (git archive) so that nothing changes under
# a run. Output: one log per run in OUT, the machine's load before each run in OUT/load.
#
#   flock /tmp/gitswarm-bench.lock sh benchmarks/speed_all.sh 13bdbcb HEAD /tmp/speed-out [quick]
#
# The swarm row (N = 256, 30 s agents) runs last: it is the long one.
set -eu
BEFORE=$1 AFTER=$2 OUT=$3 QUICK=${4:-}
PY=${PYTHON:-python}
mkdir -p "$OUT"
snap() {  # snap COMMIT DIR: the commit's tree in DIR, its hooks/, tasks/ and prompts/ where an
  # installed gitswarm has them (gitswarm.hooks...): else the editable install's finder would hand
  # this checkout's hook shims to the other commit's `gitswarm init`
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
  if [ "$side" = after ]; then guard=1; else guard=0; fi
  (cd "$OUT/$side" && PYTHONPATH="$OUT/$side" GITSWARM_BENCH_GUARD=$guard \
     "$PY" "benchmarks/$script" "$@" > "$OUT/$name-$side.log" 2>&1) || echo "  $name $side: exit $?" | tee -a "$OUT/load"
}
if [ -n "$QUICK" ]; then n=8; c=10; else n=20; c=40; fi
for side in before after; do run part1 $side claims.py --claimers 1 --layouts group-1p --budget 20 --tasks 40; done
for side in before after; do run hooks $side hooks.py --tasks 1000 --runs $n; done
run speed after speed.py --runs $n
for side in before after; do run claimers $side claims.py --skip-pushes --claimers 1,64 --layouts group-1p,group-4p; done
for side in before after; do run transports $side transports.py --transports ssh,http --claims $c --group-claims 60; done
[ -n "$QUICK" ] && exit 0
for side in before after; do run swarm $side swarm.py --workers 256 --agent-time 30 --designs gitswarm \
  --json "$OUT/swarm-$side.json" --results "$OUT/swarm-$side.md" --plot "$OUT/swarm-$side.png"; done
