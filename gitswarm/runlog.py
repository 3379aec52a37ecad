"""Every agent run of a task attempt, kept in git outside main: one root commit per attempt, at
`refs/gitswarm/runs/<task-id>/<attempt>` on the hub (created once, never moved; the hub's guard,
gitswarm/runguard.py, checks it). Its tree has a fixed layout, nothing else:

    attempt.yaml            task, attempt, worker, goal, outcome, when, runs
    1/run.yaml              command, code, ended, elapsed, reason, summary, steps, tokens, model, cost, commits
    1/stdout.txt            what the agent printed (command agents)
    1/stderr.txt
    1/prompt.md             the prompt it got
    1/transcript.jsonl      one JSON object per model exchange the metering proxy saw
    1/result.json           the result file it wrote, parsed
    2/...                   the next run of the attempt (a redo, a conflict's resolution)

Only files with content are written. Every file is bounded (MAX_FILE_BYTES) and the whole record
too (MAX_ATTEMPT_BYTES): what does not fit is cut with a marker saying so, never refused. Read it
with `git log refs/gitswarm/runs/<task>/<n>`, `git show refs/gitswarm/runs/<task>/<n>:1/stdout.txt`
or `gitswarm runs HUB TASK`.

Light at import: the hub's guard imports the layout from here on every push that holds a runs ref.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .names import ARCHIVE, RUNS, parse_runs_ref, runs_ref

if TYPE_CHECKING:
    from .agents import AgentResult
    from .gitmirror import Mirror

ATTEMPT_FILE = "attempt.yaml"
RUN_FILES = ("run.yaml", "stdout.txt", "stderr.txt", "prompt.md", "transcript.jsonl", "result.json")
ATTEMPT_KEYS = ("task", "attempt", "worker", "goal", "outcome", "when", "runs")
RUN_KEYS = ("command", "code", "ended", "elapsed", "reason", "summary", "steps", "tokens_in", "tokens_out",
            "model", "cost", "commits")
MAX_RUNS = 50  # runs kept per attempt (the last ones; attempt.yaml's `runs` says how many there were)
MAX_FILE_BYTES = 256 * 1024
MAX_ATTEMPT_BYTES = 2 * 1024 * 1024
MAX_YAML_BYTES = 64 * 1024  # run.yaml and attempt.yaml: small by construction
MAX_COMMIT_BYTES = 4096  # the commit object itself: a subject and two trailers
CUT = "\n[... gitswarm: {n} bytes cut here: over the record's limit of {limit} bytes ...]\n"


# ---------------------------------------------------------------- building a record

def cut_text(text: str, limit: int) -> bytes:
    """`text` as UTF-8 in at most `limit` bytes: when longer, its start and its end (where a
    failure says why) with a marker between saying how much was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return data
    marker = CUT.format(n=len(data), limit=limit).encode()
    room = max(0, limit - len(marker) - 16)
    head, tail = data[:room // 4], data[len(data) - (room - room // 4):]
    head = head.decode("utf-8", errors="ignore").encode()  # never split a character
    tail = tail.decode("utf-8", errors="ignore").encode()
    cut = len(data) - len(head) - len(tail)
    return (head + CUT.format(n=cut, limit=limit).encode() + tail)[:limit]


def cut_jsonl(entries: list[Any], limit: int) -> bytes:
    """One JSON object a line, in at most `limit` bytes: an entry too big is replaced by a note
    with its start; entries past the limit are dropped, a last line saying how many."""
    lines: list[bytes] = []
    size, dropped = 0, 0
    for entry in entries:
        line = json.dumps(entry if isinstance(entry, dict) else {"value": entry}, ensure_ascii=False,
                          default=str).encode("utf-8", errors="replace")
        if len(line) > limit // 4:
            start = line[:1000].decode("utf-8", errors="ignore")
            line = json.dumps({"note": f"exchange of {len(line)} bytes cut", "start": start}).encode()
        if dropped or size + len(line) + 1 > limit - 200:
            dropped += 1
            continue
        lines.append(line)
        size += len(line) + 1
    if dropped:
        lines.append(json.dumps({"note": f"{dropped} exchanges cut: over the record's limit of {limit} bytes"})
                     .encode())
    return b"".join(line + b"\n" for line in lines)


def _yaml(doc: dict[str, Any]) -> bytes:
    from .yamlfile import dump_yaml

    return dump_yaml(doc)


def _run_fields(result: "AgentResult") -> dict[str, Any]:
    trace = result.trace
    doc: dict[str, Any] = {
        "command": trace.command[:4000] if trace else None,
        "code": trace.code if trace else None,
        "ended": trace.ended if trace else None,
        "elapsed": round(trace.elapsed, 3) if trace else None,
        "reason": result.reason,
        "summary": (result.summary or "")[:4000],
        "steps": result.steps, "tokens_in": result.tokens_in, "tokens_out": result.tokens_out,
        "model": result.model, "cost": result.cost,
        "commits": [c[:300] for c in (trace.commits if trace else [])][:100],
    }
    return {k: v for k, v in doc.items() if v is not None}


def record_files(task_id: str, attempt: int, worker: str, goal: str | None, outcome: str,
                 runs: list["AgentResult"], when: str) -> dict[str, bytes]:
    """The record's files (path -> content), within the bounds."""
    from .text import printable

    kept = runs[-MAX_RUNS:]
    files = {ATTEMPT_FILE: _yaml({"task": task_id, "attempt": attempt, "worker": worker, "goal": goal,
                                  "outcome": printable(outcome, 4000), "when": when, "runs": len(runs)})}
    left = MAX_ATTEMPT_BYTES - len(files[ATTEMPT_FILE])
    for number, result in enumerate(kept, 1):
        trace = result.trace
        texts: list[tuple[str, Callable[[int], bytes]]] = [
            ("run.yaml", lambda limit, r=result: _yaml(_run_fields(r)))]
        if trace is not None:
            texts += [(name, lambda limit, t=text: cut_text(t, limit)) for name, text in
                      (("stdout.txt", trace.stdout), ("stderr.txt", trace.stderr), ("prompt.md", trace.prompt))
                      if text]
            if trace.transcript:
                texts.append(("transcript.jsonl", lambda limit, t=trace.transcript: cut_jsonl(t, limit)))
            if trace.result is not None:
                texts.append(("result.json", lambda limit, r=trace.result: _json_within(r, limit)))
        for name, make in texts:
            share = max(0, min(MAX_FILE_BYTES, left - 400 * (len(kept) - number + 1)))  # room for later run.yaml
            data = make(share) if share > 600 or name == "run.yaml" else b""
            if data:
                files[f"{number}/{name}"] = data
                left -= len(data)
    return files


def _json_within(doc: Any, limit: int) -> bytes:
    data = json.dumps(doc, ensure_ascii=False, indent=1, default=str).encode("utf-8", errors="replace")
    if len(data) <= limit:
        return data
    return json.dumps({"note": f"result of {len(data)} bytes cut: over the record's limit of {limit} bytes",
                       "start": data[:limit // 2].decode("utf-8", errors="ignore")}).encode()[:limit]


def message(task_id: str, attempt: int, worker: str, outcome: str) -> str:
    from .text import printable

    first = " ".join(printable(outcome, 200).split())
    return (f"runs of {task_id} attempt {attempt}: {first}\n\n"
            f"Gitswarm-Task: {task_id}\nGitswarm-Worker: {worker}\n")


def build(repo, task_id: str, attempt: int, worker: str, goal: str | None, outcome: str,
          runs: list["AgentResult"], when: str | None = None) -> str:
    """Write the record's root commit (author and committer: the worker) into `repo`; its id."""
    from . import git
    from .task import now

    files = record_files(task_id, attempt, worker, goal, outcome, runs, when or now())
    return git.write_commit(repo, None, files, message(task_id, attempt, worker, outcome),
                            (worker, f"{worker}@gitswarm"))


def publish(mirror: "Mirror", task_id: str, attempt: int, worker: str, goal: str | None, outcome: str,
            runs: list["AgentResult"], log: Callable[[str], None]) -> str | None:
    """Build the record and push it to the hub as its runs ref; the ref, or None when it could not
    be kept (said in `log`). Never raises: a record is worth less than the worker's next task."""
    from . import git

    ref = runs_ref(task_id, attempt)
    try:
        repo = git.open_repository(mirror.path)  # a handle of our own: the board's may be reopened meanwhile
        try:
            sha = build(repo, task_id, attempt, worker, goal, outcome, runs)
        finally:
            repo.free()
        mirror.push({ref: sha}, new_only=True)
        return ref
    except Exception as e:  # noqa: BLE001 - whatever went wrong, the worker goes on
        why = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        log(f"{worker}: could not keep the runs of {task_id} attempt {attempt} at {ref}: {why}")
        return None


# ---------------------------------------------------------------- reading records

@dataclass
class Attempt:
    number: int
    commit: str  # the record's commit, or the archive's commit that holds it
    fields: dict[str, Any]
    runs: list[dict[str, Any]]  # each run's run.yaml, plus "_files": {name: bytes}
    where: str = ""  # the ref (or the archive's ref:folder) to `git show` it from


def read_attempts(mirror: "Mirror", task_id: str) -> list[Attempt]:
    """The records of a task's attempts on the hub, live or folded into the archive
    (gitswarm/runarchive.py), oldest first: one `git ls-remote`, one fetch. A record that cannot
    be read raises FileInvalid naming its ref and file (read_record_yaml)."""
    from .runarchive import folder

    listed = mirror.remote_refs(f"{RUNS}{task_id}/*", ARCHIVE)
    refs = {ref: sha for ref, sha in listed.items() if (parsed := parse_runs_ref(ref)) and parsed[0] == task_id}
    mirror.fetch_refs(sorted(refs) + ([ARCHIVE] if ARCHIVE in listed else []))
    found: dict[int, Attempt] = {}
    if ARCHIVE in listed:
        try:
            archived = record_tree(mirror.repo, listed[ARCHIVE], ARCHIVE)[folder(task_id)]
        except KeyError:
            archived = None
        for entry in archived or ():
            if entry.type_str == "tree" and entry.name.isdigit():
                found[int(entry.name)] = _attempt(entry, int(entry.name), listed[ARCHIVE],
                                                  f"{ARCHIVE}:{folder(task_id, int(entry.name))}")
    for ref, sha in refs.items():
        number = parse_runs_ref(ref)[1]  # type: ignore[index]
        found[number] = _attempt(record_tree(mirror.repo, sha, ref), number, sha, ref)
    return [found[n] for n in sorted(found)]


def record_tree(repo, sha: str, ref: str):
    """The tree of the commit a runs ref (or the archive) points at; FileInvalid when it points at
    something else (a blob, a tag: written around the hub's guard)."""
    from .errors import FileInvalid

    obj = repo[sha]
    if obj.type_str != "commit":
        raise FileInvalid(ref, None, f"points at a {obj.type_str}, not a record's commit", _fix(ref, None))
    return obj.tree


def record_path(where: str, name: str) -> str:
    """Where `git show` finds file `name` of the record at `where` (a ref, or the archive's ref:folder)."""
    return f"{where}/{name}" if ":" in where else f"{where}:{name}"


def read_record_yaml(data: bytes, where: str, name: str) -> dict[str, Any]:
    """A record's attempt.yaml or run.yaml as a mapping (empty: {}), loaded as every YAML file is
    (gitswarm/yamlfile.py). The hub's guard checks both at push; one written around it (bad YAML,
    a tag, an alias, a date that does not exist, not UTF-8) raises FileInvalid naming the ref and
    the file, with the fix."""
    from .errors import FileInvalid
    from .validate import typename
    from .yamlfile import load_yaml

    path = record_path(where, name)

    def fail(field: str | None, problem: str, hint: str | None = None) -> FileInvalid:
        return FileInvalid(path, field, problem, _fix(where, path))

    doc = load_yaml(data, path, fail, MAX_YAML_BYTES)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise fail(None, f"holds a {typename(doc)}, not a mapping of fields")
    return doc


def _fix(where: str, path: str | None) -> str:
    """What to do about a record the hub's guard would have refused."""
    seen = f"see it with `git show {path}` in the hub; " if path else ""
    if ":" in where:  # in the archive, which only the hub's own daemon writes
        return (f"the hub's guard refuses such a record, and only the hub writes the archive: {seen}"
                "the record was written on the hub itself")
    return (f"the hub's guard refuses such a record, so it was written around it: {seen}"
            f"`git update-ref -d {where}` in the hub drops it")


def _attempt(tree, number: int, commit: str, where: str) -> Attempt:
    files = dict(_files(tree))
    fields = read_record_yaml(files.get(ATTEMPT_FILE, b""), where, ATTEMPT_FILE)
    runs = []
    for n in range(1, MAX_RUNS + 1):
        mine = {p.split("/", 1)[1]: d for p, d in files.items() if p.startswith(f"{n}/")}
        if not mine:
            break
        run = read_record_yaml(mine.get("run.yaml", b""), where, f"{n}/run.yaml")
        run["_files"] = mine
        runs.append(run)
    return Attempt(number, commit, fields, runs, where)


def _files(tree, prefix: str = ""):
    """(path, content) of every file in a record's tree (two levels at most: its layout)."""
    for entry in tree:
        if entry.type_str == "tree":
            yield from _files(entry, f"{prefix}{entry.name}/")
        elif entry.type_str == "blob":
            yield f"{prefix}{entry.name}", entry.data


def show(remote: str, task_id: str, attempt: int | None = None) -> str:
    """`gitswarm runs`: the attempts of a task, and one attempt's runs (the last by default)."""
    from .errors import GitswarmError
    from .gitmirror import Mirror
    from .names import ID_RE

    if not ID_RE.match(task_id):
        raise GitswarmError(f"{task_id!r} is not a task id", "give an id like t-4f2a91bc (gitswarm status lists them)")
    mirror = Mirror(remote)
    try:
        found = read_attempts(mirror, task_id)
    finally:
        mirror.close()
    if attempt is not None and attempt not in [a.number for a in found]:
        raise GitswarmError(f"no runs recorded for attempt {attempt} of {task_id}",
                            f"recorded: {', '.join(str(a.number) for a in found) or 'none'}")
    return describe(found, task_id, attempt if attempt is not None else (found[-1].number if found else None))


def describe(attempts: list[Attempt], task_id: str, detail: int | None, tail: int = 1500) -> str:
    """What `gitswarm runs` prints: one line per attempt; with `detail`, that attempt's runs."""
    from .text import printable

    if not attempts:
        return f"no runs recorded for {task_id} (no {RUNS}{task_id}/* on the hub, none in its archive)"
    lines = []
    for a in attempts:
        f = a.fields
        tokens = sum(_count(r.get("tokens_in")) + _count(r.get("tokens_out")) for r in a.runs)
        lines.append(f"attempt {a.number}  {printable(str(f.get('outcome', '?')), 200)}  worker "
                     f"{printable(str(f.get('worker', '?')), 64)}  runs {len(a.runs)}  tokens {tokens}  "
                     f"{printable(str(f.get('when', '')), 40)}  {a.commit[:10]}")
    for a in attempts:
        if detail is None or a.number != detail:
            continue
        lines.append("")
        lines.append(f"attempt {a.number}: {a.where}")
        for n, run in enumerate(a.runs, 1):
            files = run["_files"]
            lines.append(f"run {n}:")
            lines += [f"  {k}: " + printable(str(run[k]), 300).replace("\n", "\n    ") for k in RUN_KEYS if k in run]
            if "transcript.jsonl" in files:
                lines.append(f"  transcript: {len(files['transcript.jsonl'].splitlines())} exchanges")
            for name in ("stdout.txt", "stderr.txt"):
                if name in files:
                    text = printable(files[name].decode("utf-8", errors="replace"), tail)
                    lines.append(f"  --- {name} (last {tail} characters at most) ---")
                    lines += ["  " + ln for ln in text.splitlines()]
    return "\n".join(lines)


def _count(value: Any) -> int:
    """A count a record states (tokens): 0 when it states none, or not a whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
