# Sourced by speed_all.sh and backoff_all.sh: snapshots of commits and runs of benchmarks on them.
# OUT and PY must be set by the caller.

snap() {  # snap COMMIT DIR: the commit's tree in DIR, its hooks/, tasks/ and prompts/ where an
  # installed gitswarm has them (gitswarm.hooks...): else the editable install's finder would hand
  # this checkout's hook shims to the other commit's `gitswarm init`
  rm -rf "$2" && mkdir -p "$2" && git archive "$1" | tar -x -C "$2"
  cp -r "$2/hooks" "$2/gitswarm/hooks" && cp -r "$2/tasks" "$2/gitswarm/schema" &&
    cp -r "$2/prompts" "$2/gitswarm/prompt_templates"
}

run_on() {  # run_on NAME before|after GUARD SCRIPT ARGS...: SCRIPT of the side's snapshot, the
  # resident guard up when GUARD is 1; its output in OUT/NAME-SIDE.log, the load in OUT/load
  name=$1 side=$2 guard=$3 script=$4
  shift 4
  echo "$(date -u +%H:%M:%S) $name $side: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load"
  (cd "$OUT/$side" && PYTHONPATH="$OUT/$side" GITSWARM_BENCH_GUARD=$guard \
     "$PY" "benchmarks/$script" "$@" > "$OUT/$name-$side.log" 2>&1) || echo "  $name $side: exit $?" | tee -a "$OUT/load"
}
