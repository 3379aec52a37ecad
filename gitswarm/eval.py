"""`gitswarm eval SUITE`: run a suite's goals (gitswarm/evalsuite.py) on fresh hubs, K trials each,
per variant of the settings (`--matrix`), and measure them by their hidden checks.

A trial: `gitswarm init` a hub in a folder of its own; push the entry's snapshot to main with the
variant's `.gitswarm.yaml` (the snapshot's own, then `--settings`, then the variant's, merged key by
key), then push the goal file; run `gitswarm serve HUB --until-done` in a process of its own, killed
whole at the entry's timeout (or --timeout); read the board (gitswarm.report: tasks, landings,
tokens, the judge's verdicts); run the hidden check, outside the hub and in the sandbox, on main's
final tree and on the tree each verdict saw (gitswarm/evalcheck.py).
The serve processes use this host's endpoints and agents (gitswarm/endpoints.py) as any serve does.
Trials run `jobs` at a time. Tables and the PNG are evalreport.py's, from the results alone."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import git, names, sandbox
from . import report as R
from . import task as T
from .proc import run_killable
from .config import CONFIG_PATH, config_errors
from .errors import FileInvalid, GitswarmError
from .evalreport import FORMAT
from .evalcheck import run_checks
from .evalsuite import Entry, Suite, copy_tree
from .goal import goal_errors, split_front_matter  # split_front_matter: goal.py's own reading of a goal file
from .install import init
from .record import spent, spent_cost
from .names import NAME_RE
from .text import printable
from .validate import shown, typename, unknown_hint
from .yamlfile import load_yaml

VARIANT_FIELDS = ("settings", "goal", "prompts", "price", "workers")
IDENTITY = {"GIT_AUTHOR_NAME": "gitswarm eval", "GIT_AUTHOR_EMAIL": "eval@gitswarm.invalid",
            "GIT_COMMITTER_NAME": "gitswarm eval", "GIT_COMMITTER_EMAIL": "eval@gitswarm.invalid"}
OUTPUT_KEPT = 2000  # characters of serve's and the check's output kept in a trial's result


class MatrixInvalid(FileInvalid):
    """A matrix file, or the settings it makes, breaks the rules."""


@dataclass(frozen=True)
class Variant:
    """One configuration under test: `.gitswarm.yaml` overrides, goal front-matter overrides, the
    workers of its serve, and its price in USD per million tokens (None: cost is not reported)."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    price: float | None = None
    goal: dict[str, Any] = field(default_factory=dict)  # front matter merged into every goal's (budget, ...)
    prompts: dict[str, str] = field(default_factory=dict)  # prompt name -> its text, as .gitswarm/prompts/<name>.md


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on `base`, mapping by mapping (a role's section keeps the keys `over` does not name)."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def load_settings(path: Path | None) -> dict[str, Any]:
    """A `.gitswarm.yaml` to start every variant from (`--settings`); {} for none."""
    if path is None:
        return {}
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise FileInvalid(str(path), None, f"must hold a mapping, not {typename(doc)}", "write .gitswarm.yaml settings")
    return doc


def load_matrix(path: Path, workers: int, price: float | None) -> list[Variant]:
    """The variants of a matrix file:

        variants:
          small:  {settings: {worker: {model: qwen2.5-coder:7b}}, price: 0.2}
          thrifty: {goal: {budget: 200000, max_cycles: 2}, workers: 4}
          terse:  {prompts: {worker: prompts/terse-worker.md}}   # a file beside the matrix

    `workers` and `price` are the defaults of the variants that do not give theirs."""
    where = str(path)

    def fail(field_name: str | None, problem: str, hint: str | None = None) -> MatrixInvalid:
        return MatrixInvalid(where, field_name, problem, hint)

    doc = load_yaml(path.read_text(encoding="utf-8"), where, fail)
    if not isinstance(doc, dict) or set(doc) != {"variants"} or not isinstance(doc["variants"], dict) \
            or not doc["variants"]:
        raise fail(None, "must hold one field, variants: a mapping of names to variants",
                   "variants: {baseline: {settings: {}}, small: {settings: {model: qwen2.5-coder:7b}}}")
    variants = []
    for name, body in doc["variants"].items():
        at = f"variants.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise fail(at, f"{shown(name)} is not a variant name", "letters, digits, '.', '_', '-'; up to 64")
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise fail(at, f"must be a mapping, not {typename(body)}", "{settings: {...}, price: 0.5, workers: 2}")
        for key in body:
            if key not in VARIANT_FIELDS:
                raise fail(f"{at}.{key}", "unknown field", unknown_hint(key, VARIANT_FIELDS, "a variant holds"))
        settings, goal = body.get("settings") or {}, body.get("goal") or {}
        for key, value, hint in (("settings", settings, "write .gitswarm.yaml settings"),
                                 ("goal", goal, "write goal front matter, e.g. {budget: 1000000}")):
            if not isinstance(value, dict):
                raise fail(f"{at}.{key}", f"must be a mapping, not {typename(value)}", hint)
        n = body.get("workers", workers)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 64:
            raise fail(f"{at}.workers", f"{shown(n)} is not a number of workers from 1 to 64", "workers: 2")
        cost = body.get("price", price)
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float)) or cost < 0):
            raise fail(f"{at}.price", f"{shown(cost)} is not a price", "USD per million tokens, e.g. price: 0.6")
        variants.append(Variant(name, settings, n, None if cost is None else float(cost), goal,
                                _variant_prompts(path.parent, body.get("prompts") or {}, f"{at}.prompts", fail)))
    return variants


def _variant_prompts(folder: Path, given: Any, at: str, fail: Callable[..., MatrixInvalid]) -> dict[str, str]:
    """A variant's prompts: {name: file} (a path from the matrix file's folder), each checked as
    the hub checks `.gitswarm/prompts/<name>.md` on main (a prompt gitswarm has, its placeholders)."""
    from .check import check_file
    from .prompts import OVERRIDE_DIR

    if not isinstance(given, dict):
        raise fail(at, f"must be a mapping, not {typename(given)}", "prompts: {worker: prompts/worker.md}")
    texts = {}
    for name, file in given.items():
        if not isinstance(file, str) or not file:
            raise fail(f"{at}.{name}", f"{shown(file)} is not a file", "give a path from the matrix file's folder")
        try:
            data = (folder / file).read_bytes()
        except OSError as e:
            raise fail(f"{at}.{name}", f"cannot read {file}: {e.strerror}", "give a path from the matrix file's "
                       "folder") from None
        problems = check_file(f"{OVERRIDE_DIR}/{name}.md", data)
        if problems:
            raise fail(f"{at}.{name}", f"{file}: {problems[0]}", problems[0].hint)
        texts[str(name)] = data.decode("utf-8")
    return texts


def settings_text(entry: Entry, base: dict[str, Any], variant: Variant) -> str:
    """The `.gitswarm.yaml` a trial pushes: the snapshot's own, then `base`, then the variant's.
    MatrixInvalid when the hub would refuse it (every problem named, with the variant)."""
    own = entry.snapshot / CONFIG_PATH
    start = load_settings(own) if own.is_file() else {}
    text = yaml.safe_dump(merge(merge(start, base), variant.settings), sort_keys=False) if \
        (start or base or variant.settings) else ""
    problems = config_errors(text or None)
    if problems:
        said = "; ".join(f"{p.field}: {p.problem}" if p.field else p.problem for p in problems)
        raise MatrixInvalid(f"variant {variant.name} ({entry.name})", CONFIG_PATH, said,
                            problems[0].hint or "fix the variant's settings or --settings")
    return text


def goal_text(entry: Entry, variant: Variant) -> str:
    """The goal file a trial pushes: the entry's, its front matter merged with the variant's `goal`.
    MatrixInvalid when the hub would refuse it (naming the variant, the field and the fix)."""
    if not variant.goal:
        return entry.goal_text
    front, body = split_front_matter(entry.goal_path, entry.goal_text)
    own = load_yaml(front or "", entry.goal_path) or {}
    text = f"---\n{yaml.safe_dump(merge(own, variant.goal), sort_keys=False)}---\n{body}"
    problems = goal_errors(entry.goal_path, text)
    if problems:
        said = "; ".join(f"{p.field}: {p.problem}" if p.field else p.problem for p in problems)
        raise MatrixInvalid(f"variant {variant.name} ({entry.name})", "goal", said, problems[0].hint)
    return text


@dataclass
class Plan:
    """What `run` does: every (variant, entry, trial), and where."""

    suite: Suite
    variants: list[Variant]
    base: dict[str, Any]
    trials: int = 1
    jobs: int = 1
    workdir: Path | None = None  # where the trials' hubs are built (kept); None: a temporary folder, removed
    timeout: float | None = None  # a trial's wall time for every entry; None: each entry's own
    say: Callable[[str], None] = print
    progress: Callable[[dict[str, Any]], None] | None = None  # the document so far, after each trial


def run(plan: Plan, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run every trial of the plan and return the results document (evalreport.summarize reads it)."""
    stop = stop or threading.Event()
    sandboxed = sandbox.check()  # the hidden checks run there: a host that cannot make one stops here, saying why
    texts = {(v.name, e.name): (settings_text(e, plan.base, v), goal_text(e, v))
             for v in plan.variants for e in plan.suite.entries}
    runs = [(v, e, k) for k in range(1, plan.trials + 1) for v in plan.variants for e in plan.suite.entries]
    root = Path(plan.workdir or tempfile.mkdtemp(prefix="gitswarm-eval-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    done: list[dict[str, Any]] = []
    doc = {"format": FORMAT, "suite": plan.suite.name, "trials_per_goal": plan.trials,
           "goals": [{"name": e.name, "difficulty": e.difficulty, "kind": e.kind} for e in plan.suite.entries],
           "variants": [{"name": v.name, "settings": v.settings, "goal": v.goal, "workers": v.workers,
                         "price": v.price} for v in plan.variants],
           "workdir": str(root) if plan.workdir is not None else None, "meta": _meta(plan), "results": done}

    def one(index: int, variant: Variant, entry: Entry, k: int) -> dict[str, Any]:
        folder = root / variant.name / entry.name / str(k)
        settings, goal = texts[(variant.name, entry.name)]
        result = run_trial(entry, variant, k, settings, goal, folder, f"eval{index}", stop,
                           plan.timeout or entry.timeout)
        with lock:
            done.append(result)
            plan.say(f"[{len(done)}/{len(runs)}] {variant.name} {entry.name} #{k}: {_outcome(result)}")
            if plan.progress is not None:
                plan.progress(doc | {"results": _ordered(done, runs)})
        if plan.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
        return result

    plan.say(sandboxed)
    plan.say(f"eval: {len(plan.suite.entries)} goal(s) x {len(plan.variants)} variant(s) x {plan.trials} trial(s), "
             f"{plan.jobs} at a time, in {root}")
    pool = ThreadPoolExecutor(max_workers=max(1, plan.jobs))
    try:
        for future in [pool.submit(one, i, *r) for i, r in enumerate(runs, 1)]:
            future.result()
    except BaseException:  # Ctrl-C: every serve is killed whole, then the folders go
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if plan.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    return doc | {"results": _ordered(done, runs)}


def _meta(plan: Plan) -> dict[str, Any]:
    """What a reader needs to compare two runs: gitswarm's version, when, the suite's exact content
    (a hash of its files), the settings every variant started from, and this host's endpoints
    (names and URLs; never a key)."""
    from . import __version__
    from .endpoints import load_host

    digest = hashlib.sha256()
    for path in sorted(p for p in plan.suite.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(plan.suite.folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return {"gitswarm": __version__, "python": sys.version.split()[0], "started": T.now(),
            "suite_folder": str(plan.suite.folder), "suite_sha256": digest.hexdigest(), "base_settings": plan.base,
            "timeout": plan.timeout, "jobs": plan.jobs,
            "endpoints": {e.name: e.base_url for e in load_host().items}}


def _ordered(results: list[dict[str, Any]], runs: list[tuple[Variant, Entry, int]]) -> list[dict[str, Any]]:
    """Results in the plan's order, whatever order the trials ended in: the same plan, the same file."""
    place = {(v.name, e.name, k): i for i, (v, e, k) in enumerate(runs)}
    return sorted(results, key=lambda r: place[(r["variant"], r["goal"], r["trial"])])


def _outcome(result: dict[str, Any]) -> str:
    if result["error"]:
        return f"error: {result['error'][:200]}"
    check = "passed" if result["passed"] else "FAILED"
    why = " (timed out)" if result["timed_out"] else f" (goal {result['status']}: {result['reason'][:200]})" \
        if result["status"] in ("invalid", "stopped") and result["reason"] else ""
    return (f"hidden check {check}, judge {result['judge'] or 'gave no verdict'}{why}, {result['wall']:.0f}s, "
            f"{result['tokens']} tokens")


def run_trial(entry: Entry, variant: Variant, k: int, settings: str, goal: str, folder: Path, name: str,
              stop: threading.Event, timeout: float) -> dict[str, Any]:
    """One trial, start to hidden check. Whatever goes wrong is the trial's `error`, never the eval's."""
    result: dict[str, Any] = {"variant": variant.name, "goal": entry.name, "trial": k, "passed": False,
                              "judge": None, "status": None, "exit": None, "timed_out": False, "wall": 0.0,
                              "reason": None, "tokens": 0, "cost": None, "tasks": 0, "landed": 0, "cycles": 0, "verdicts": [],
                              "check_output": "", "error": None}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    hub = folder / "hub.git"
    try:
        init(hub)
        _push_start(hub, folder / "project", entry, settings, goal, variant.prompts)
        start = time.monotonic()
        ran = run_killable([sys.executable, "-m", "gitswarm", "serve", str(hub), "--until-done",
                            "--workers", str(variant.workers), "--planners", "1", "--id", name],
                           folder, None, timeout, stop=stop, keep=40_000, merge=True, grace=30.0)
        result["wall"] = round(time.monotonic() - start, 3)
        result["exit"], result["timed_out"] = ran.code, ran.ended == "time"
        (folder / "serve.log").write_text(ran.stdout)
        if ran.ended == "stopped":
            raise GitswarmError("the eval was interrupted")
        _read_board(hub, entry.name, result)
        result["passed"], output = run_checks(entry, hub, folder, result["verdicts"])
        result["check_output"] = output[-OUTPUT_KEPT:]
        if result["status"] is None and not result["timed_out"]:
            result["error"] = f"serve exited {ran.code} before the goal had a record:\n" + \
                printable(ran.stdout[-OUTPUT_KEPT:], OUTPUT_KEPT)
    except (GitswarmError, OSError) as e:
        result["error"] = printable(str(e), OUTPUT_KEPT)
    except Exception as e:  # noqa: BLE001 - a bug here fails this trial, said in full, never the eval
        result["error"] = printable(f"internal error: {type(e).__name__}: {e}", OUTPUT_KEPT)
    return result


def _push_start(hub: Path, project: Path, entry: Entry, settings: str, goal: str,
                prompts: dict[str, str] | None = None) -> None:
    """The snapshot (with the trial's settings and prompts) to main, then the goal: two plain pushes."""
    from .prompts import OVERRIDE_DIR

    env = git.no_git_env() | IDENTITY
    git.run(["clone", "-q", str(hub), str(project)], env=env)
    copy_tree(entry.snapshot, project)
    if settings:
        (project / CONFIG_PATH).write_text(settings)
    for name, text in (prompts or {}).items():
        (project / OVERRIDE_DIR).mkdir(parents=True, exist_ok=True)
        (project / OVERRIDE_DIR / f"{name}.md").write_text(text)
    _commit_push(project, "Start: the eval's snapshot", env)
    (project / "goals").mkdir(exist_ok=True)
    (project / entry.goal_path).write_text(goal)
    _commit_push(project, f"Goal: {entry.name}", env)


def _commit_push(project: Path, message: str, env: dict[str, str]) -> None:
    git.run(["add", "-A"], cwd=project, env=dict(env))
    git.run(["commit", "-q", "--allow-empty", "-m", message], cwd=project, env=dict(env))
    git.run(["push", "-q", "origin", f"HEAD:{names.MAIN}"], cwd=project, env=dict(env))


def _read_board(hub: Path, goal: str, result: dict[str, Any]) -> None:
    """The goal's tasks, landings, tokens and the judge's verdicts, from the hub's board."""
    board = R.build(str(hub))
    record = next((r for r in board.records if r.name == goal), None)
    if record is None:
        return
    tasks = [t for t in board.tasks if t.goal == goal]
    result.update(status=record.status, reason=record.reason, cycles=record.cycle, tokens=spent(record, tasks),
                  cost=spent_cost(record, tasks),
                  tasks=len(tasks), landed=sum(t.id in board.landed for t in tasks),
                  judge=record.verdicts[-1].decision if record.verdicts else None,
                  verdicts=[{"cycle": v.cycle, "decision": v.decision, "at": v.at} for v in record.verdicts])


def default_jobs() -> int:
    """Trials at once: one per two cores (each trial's serve runs several agents)."""
    return max(1, (os.cpu_count() or 2) // 2)


def command(suite: str | None, *, trials: int, jobs: int | None, workers: int, matrix: Path | None,
            settings: Path | None, only: str, price: float | None, out: Path, workdir: Path | None,
            from_file: Path | None, say: Callable[[str], None], timeout: float | None = None) -> int:
    """`gitswarm eval`: run (or, with `from_file`, only redraw) and write results.json, .md, .png.
    While it runs, results.json holds the trials so far (an interrupted eval keeps them)."""
    from .evalreport import markdown, read_results, write_all, write_json
    from .evalsuite import load_suite

    if from_file is not None:
        doc = read_results(from_file)
    else:
        picked = load_suite(suite).only([n.strip() for n in only.split(",") if n.strip()])
        variants = load_matrix(matrix, workers, price) if matrix else [Variant("default", {}, workers, price)]
        out.mkdir(parents=True, exist_ok=True)
        doc = run(Plan(picked, variants, load_settings(settings), trials, jobs or default_jobs(), workdir, timeout,
                       say, progress=lambda so_far: write_json(so_far, out / "results.json")))
    say(markdown(doc))
    for line in write_all(doc, out):
        say(line)
    return 0
