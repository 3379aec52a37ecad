"""The guard's rules for runs refs (gitswarm/runlog.py): `refs/gitswarm/runs/<task>/<attempt>`.

A runs ref is accepted only when it is created (never moved, never deleted), names a task on the
board and an attempt that task reached, comes from the worker that made that attempt (the claim's
holder, bound to the pusher as for its claim; when the board no longer tells who made it, the
commit's Gitswarm-Worker, which must be bound to the pusher), and points at a root commit whose
tree has exactly the record's layout: regular files only, names and sizes within bounds, YAML and
JSON that parse. Reads git through the hook's HookRepo (the command line): called from guard.py.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .errors import RuleViolation
from .githook import HookRepo
from .runlog import (ATTEMPT_FILE, ATTEMPT_KEYS, MAX_ATTEMPT_BYTES, MAX_COMMIT_BYTES, MAX_FILE_BYTES, MAX_RUNS,
                     MAX_YAML_BYTES, RUN_FILES, RUN_KEYS)
from .names import NAME_RE, RUNS, created_once, parse_runs_ref

REGULAR, TREE = "100644", "040000"
HINT = "gitswarm's workers write these records themselves (gitswarm/runlog.py); push nothing else there"
SLACK = 10  # entries read past the layout's count, so that the first one too many is named
KINDS = {"120000": "a symlink", "100755": "an executable", "160000": "a submodule", TREE: "a folder"}


def bad_names(refs: list[str]) -> list[str]:
    """Lines refusing a ref under refs/gitswarm/runs/ that is not exactly a runs ref, or []."""
    for ref in refs:
        if ref.startswith(RUNS) and parse_runs_ref(ref) is None:
            return [f"gitswarm: rejected {ref}: not a runs ref: the name must be exactly "
                    f"{RUNS}<task id>/<attempt> (a task id like t-4f2a91bc, an attempt 1, 2, ...)",
                    f"gitswarm: hint: {HINT}"]
    return []


def check_runs(refs: dict[str, tuple[str, str]], repo: HookRepo, board: str | None, actors: set[str],
               bound: Callable[[str], str | None], pusher: str | None) -> None:
    """Check every runs ref the push updates; raises RuleViolation naming the ref. Adds the worker
    of each attempt the board tells to `actors` (checked against the pusher like a claim's);
    `bound(worker)`: the identity a worker is bound to, for an attempt the board no longer tells."""
    for ref, (old, new) in refs.items():
        parsed = parse_runs_ref(ref)
        if parsed is None:
            continue
        created_once(ref, old, new, "a runs ref", "an attempt's record is written once, when the attempt ends")
        task_id, attempt = parsed
        worker = _check_commit(ref, repo, new, task_id)
        made_by = _attempt_worker(ref, repo, board, task_id, attempt)
        if made_by is not None:
            if made_by != worker:
                raise RuleViolation(ref, f"attempt {attempt} of {task_id} was made by {made_by}; this record's "
                                    f"Gitswarm-Worker is {worker}", "only the worker that made an attempt records it")
            actors.add(made_by)
        elif bound(worker) != pusher:
            raise RuleViolation(ref, f"the board no longer tells who made attempt {attempt} of {task_id}, and "
                                f"this record's Gitswarm-Worker {worker} is "
                                f"{'bound to ' + str(bound(worker)) if bound(worker) else 'bound to nobody'}, "
                                f"not to this push's {pusher or 'anonymous pusher'}",
                                "record an attempt from the identity its worker claimed it with")
        _check_tree(ref, repo, new, task_id, attempt, worker)


def _attempt_worker(ref: str, repo: HookRepo, board: str | None, task_id: str, attempt: int) -> str | None:
    """Who made the attempt, as the board tells: the claim's holder, or the worker of the result
    of its last attempt; None when no longer told. Refuses an unknown task or attempt."""
    from .task import parse, task_path

    data = repo.read(f"{board}:{task_path(task_id)}") if board else None
    if data is None:
        raise RuleViolation(ref, f"task {task_id} is not on the board", "record runs of the board's tasks only")
    task = parse(data, task_path(task_id))
    if attempt > task.attempts:
        raise RuleViolation(ref, f"{task_id} has made {task.attempts} attempts; attempt {attempt} never was",
                            "record an attempt that was claimed")
    if task.claim is not None and task.claim.token == attempt:
        return task.claim.worker
    if task.claim is None and task.attempts == attempt and task.result and task.result.get("worker"):
        return str(task.result["worker"])
    return None


def _check_commit(ref: str, repo: HookRepo, commit: str, task_id: str) -> str:
    """The record's commit: a root commit, small, its trailers naming the task and a worker; the worker."""
    from .rules import parse_trailers

    kind, size = repo.info(commit) or ("missing", 0)
    if kind != "commit":
        raise RuleViolation(ref, f"points at a {kind} {commit[:10]}, not a commit", HINT)
    if size > MAX_COMMIT_BYTES:
        raise RuleViolation(ref, f"commit {commit[:10]} is {size} bytes; a record's commit is at most "
                            f"{MAX_COMMIT_BYTES}", "a subject and the trailers Gitswarm-Task and Gitswarm-Worker")
    raw = (repo.read(commit) or b"").decode("utf-8", errors="replace")
    head, _, body = raw.partition("\n\n")
    if any(line.startswith("parent ") for line in head.splitlines()):
        raise RuleViolation(ref, f"commit {commit[:10]} has a parent: a record is a root commit, apart from "
                            "main's and the board's history", "build it with no parents (gitswarm/runlog.py)")
    info = parse_trailers(body, name=f"commit {commit[:10]}")
    if info.tasks != [task_id]:
        raise RuleViolation(ref, f"commit {commit[:10]}: its Gitswarm-Task trailers name "
                            f"{', '.join(info.tasks) or 'no task'}, not {task_id} alone",
                            f"end the message with Gitswarm-Task: {task_id}")
    if not info.worker or not NAME_RE.match(info.worker):
        raise RuleViolation(ref, f"commit {commit[:10]}: no valid Gitswarm-Worker trailer",
                            "end the message with Gitswarm-Worker: <the worker that made the attempt>")
    return info.worker


def _check_tree(ref: str, repo: HookRepo, commit: str, task_id: str, attempt: int, worker: str) -> None:
    raw = (repo.read(commit) or b"").decode("utf-8", errors="replace")
    top_id = raw.split("\n", 1)[0].removeprefix("tree ").strip()
    top = _entries(ref, repo, top_id, "the tree", MAX_RUNS + 1 + SLACK)
    total = 0
    runs = sorted(name for mode, name, _ in top if name != ATTEMPT_FILE)
    for mode, name, sha in top:
        run_folder = name.isdigit() and name == str(int(name)) and 1 <= int(name) <= MAX_RUNS
        if name == ATTEMPT_FILE and mode == REGULAR:
            total += _check_file(ref, repo, mode, name, sha, MAX_YAML_BYTES)
            _check_yaml(ref, name, repo.read(sha) or b"", ATTEMPT_KEYS,
                        {"task": task_id, "attempt": attempt, "worker": worker})
        elif run_folder and mode == TREE:
            files = _entries(ref, repo, sha, f"{name}/", len(RUN_FILES) + SLACK)
            for file_mode, file_name, file_sha in files:
                path = f"{name}/{file_name}"
                if file_name not in RUN_FILES:
                    raise RuleViolation(ref, f"{path}: not a file of the record ({', '.join(RUN_FILES)} only)", HINT)
                total += _check_file(ref, repo, file_mode, path, file_sha,
                                     MAX_YAML_BYTES if file_name == "run.yaml" else MAX_FILE_BYTES)
                _check_content(ref, path, repo.read(file_sha) or b"")
                if total > MAX_ATTEMPT_BYTES:
                    raise RuleViolation(ref, f"the record holds over {MAX_ATTEMPT_BYTES} bytes (at {path})",
                                        "cut the runs' output to the record's bounds (gitswarm/runlog.py)")
            if "run.yaml" not in [file_name for _, file_name, _ in files]:
                raise RuleViolation(ref, f"{name}/run.yaml: missing: every run has its run.yaml", HINT)
        else:
            what = KINDS.get(mode, f"mode {mode}") if name == ATTEMPT_FILE or run_folder else "an unknown entry"
            raise RuleViolation(ref, f"{name}: {what} where the record holds {ATTEMPT_FILE} and the folders 1, 2, "
                                f"... (at most {MAX_RUNS}) only", HINT)
    if ATTEMPT_FILE not in [name for _, name, _ in top]:
        raise RuleViolation(ref, f"{ATTEMPT_FILE}: missing", HINT)
    if runs != sorted(str(n) for n in range(1, len(runs) + 1)):
        raise RuleViolation(ref, f"run folders {', '.join(runs)}: they are numbered 1, 2, ... without a gap", HINT)


def _entries(ref: str, repo: HookRepo, sha: str, where: str, most: int) -> list[tuple[str, str, str]]:
    entries = repo.tree(sha, most)
    if entries is None:
        raise RuleViolation(ref, f"{where}: not a tree of at most {most} entries: a record holds "
                            f"{ATTEMPT_FILE} and up to {MAX_RUNS} run folders of {len(RUN_FILES)} files", HINT)
    return entries


def _check_file(ref: str, repo: HookRepo, mode: str, path: str, sha: str, limit: int) -> int:
    """A regular file within its size limit; its size."""
    if mode != REGULAR:
        raise RuleViolation(ref, f"{path}: {KINDS.get(mode, 'mode ' + mode)}; a record holds regular files only "
                            f"(mode {REGULAR})", HINT)
    kind, size = repo.info(sha) or ("missing", 0)
    if kind != "blob":
        raise RuleViolation(ref, f"{path}: a {kind}, not a file", HINT)
    if size > limit:
        raise RuleViolation(ref, f"{path}: {size} bytes; the limit is {limit}",
                            "cut it to the record's bounds with a marker (gitswarm/runlog.py does)")
    return size


def _check_content(ref: str, path: str, data: bytes) -> None:
    name = path.split("/", 1)[1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleViolation(ref, f"{path}: not UTF-8 (byte {e.start})", HINT) from None
    if name == "run.yaml":
        _check_yaml(ref, path, data, RUN_KEYS, {})
    elif name == "result.json":
        _json(ref, path, text, 1)
    elif name == "transcript.jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            _json(ref, path, line, number)


def _json(ref: str, path: str, text: str, line: int) -> None:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise RuleViolation(ref, f"{path}: line {line} is not JSON: {e}", HINT) from None
    if not isinstance(value, dict):
        raise RuleViolation(ref, f"{path}: line {line} is a JSON {type(value).__name__}, not an object", HINT)


def _check_yaml(ref: str, path: str, data: bytes, keys: tuple[str, ...], expected: dict[str, Any]) -> None:
    from .errors import FileInvalid
    from .yamlfile import load_yaml

    try:
        doc = load_yaml(data.decode("utf-8"), path, max_bytes=MAX_YAML_BYTES)
    except (UnicodeDecodeError, FileInvalid) as e:
        raise RuleViolation(ref, f"{path}: not valid YAML: {getattr(e, 'message', e)}", HINT) from None
    if not isinstance(doc, dict):
        raise RuleViolation(ref, f"{path}: not a mapping of {', '.join(keys)}", HINT)
    unknown = sorted(str(k) for k in doc if k not in keys)
    if unknown:
        raise RuleViolation(ref, f"{path}: unknown field {unknown[0]!r} (fields: {', '.join(keys)})", HINT)
    for key, value in expected.items():
        if doc.get(key) != value:
            raise RuleViolation(ref, f"{path}: {key} is {doc.get(key)!r}, not {value!r} as the ref and commit say",
                                HINT)
