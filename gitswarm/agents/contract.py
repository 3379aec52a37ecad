"""What gitswarm and a command agent say to each other (docs/agents.md has the user's version).

gitswarm gives the agent, in its environment: the task (GITSWARM_ROLE, GITSWARM_TASK_ID,
GITSWARM_WORKER, GITSWARM_GOAL, GITSWARM_ATTEMPT: the claim's number, 2 and up on a retry), the prompt (GITSWARM_PROMPT_FILE; on stdin too in prompt mode
stdin), a folder of its own outside the worktree (GITSWARM_RUN_DIR) and the file to answer in
(GITSWARM_RESULT_FILE), the Python running gitswarm (GITSWARM_PYTHON: recipes run as
`${GITSWARM_PYTHON:-python3} -m gitswarm.recipes.<name>`), and the model (GITSWARM_MODEL,
GITSWARM_BASE_URL, and the same as OPENAI_BASE_URL / OPENAI_API_BASE / OPENAI_API_KEY, where the
key is a token for gitswarm's metering proxy, never the host's key), and an identity for commits it makes (GIT_AUTHOR_NAME, ...: the
worker's name).

The agent answers with its exit status and, if it likes, the result file: JSON

    {"status": "done" | "failed" | "handback", "summary": "...", "tokens_in": 0, "tokens_out": 0,
     "model": "...", "cost": 0.0}

every field optional. Exit 75 (EX_TEMPFAIL) hands the task back without burning an attempt, as
status "handback" does; another non-zero exit is a failure. The file is the agent's word, so it is
checked like every other input: a broken one fails the run saying which field and why.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from ..errors import GitswarmError
from ..text import printable

HANDBACK_EXIT = 75  # EX_TEMPFAIL, sysexits.h
RESULT_NAME = "result.json"
PROMPT_NAME = "prompt.md"
RESULT_MAX_BYTES = 256 * 1024
STATUSES = ("done", "failed", "handback")
FIELDS = ("status", "summary", "tokens_in", "tokens_out", "model", "cost")
TOKENS_MAX = 10**12
RESULT_HINT = ('write JSON like {"status": "done", "summary": "what changed", "tokens_in": 0, '
               '"tokens_out": 0, "model": "name", "cost": 0.0} to $GITSWARM_RESULT_FILE (every field optional), '
               'or write nothing')


class ResultInvalid(GitswarmError):
    """The agent's result file breaks the contract: the run fails, naming the field."""


def read_result(path: Path) -> dict[str, Any] | None:
    """The agent's result file, checked; None when it wrote none. Raises ResultInvalid."""
    where = "the agent's result file ($GITSWARM_RESULT_FILE)"
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ResultInvalid(f"{where} is not a plain file", RESULT_HINT)
        if not path.exists():
            return None
        size = path.stat().st_size
        if size > RESULT_MAX_BYTES:
            raise ResultInvalid(f"{where} is {size} bytes; the limit is {RESULT_MAX_BYTES}", RESULT_HINT)
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ResultInvalid(f"{where} cannot be read: {e}", RESULT_HINT) from None
    except json.JSONDecodeError as e:
        raise ResultInvalid(f"{where} is not JSON: {e.msg} at line {e.lineno}", RESULT_HINT) from None
    if not isinstance(doc, dict):
        raise ResultInvalid(f"{where} must hold a JSON object, not {type(doc).__name__}", RESULT_HINT)
    return check_result(doc, where)


def check_result(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """The result's fields, normalized: status (default done), summary (printable text), tokens
    (whole numbers), model (a name), cost (a number)."""
    unknown = sorted(str(k) for k in doc if k not in FIELDS)
    if unknown:
        raise ResultInvalid(f"{where}: unknown field {unknown[0]!r}", f"the fields are: {', '.join(FIELDS)}")
    out: dict[str, Any] = {"status": doc.get("status", "done")}
    if out["status"] not in STATUSES:
        raise ResultInvalid(f"{where}: status {out['status']!r} is not one of {', '.join(STATUSES)}", RESULT_HINT)
    summary = doc.get("summary", "")
    if not isinstance(summary, str):
        raise ResultInvalid(f"{where}: summary must be text, not {type(summary).__name__}", RESULT_HINT)
    out["summary"] = printable(summary).strip()
    for name in ("tokens_in", "tokens_out"):
        value = doc.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TOKENS_MAX:
            raise ResultInvalid(f"{where}: {name} must be a whole number from 0 to {TOKENS_MAX}, not {value!r}",
                                RESULT_HINT)
        out[name] = value
    model = doc.get("model")
    if model is not None:
        if not isinstance(model, str) or not model.strip() or len(model) > 200 or printable(model) != model \
                or any(c.isspace() for c in model):
            raise ResultInvalid(f"{where}: model must be a name without spaces (at most 200 characters)",
                                RESULT_HINT)
        out["model"] = model
    cost = doc.get("cost")
    if cost is not None:
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0:
            raise ResultInvalid(f"{where}: cost must be a number of 0 or more, not {cost!r}", RESULT_HINT)
        out["cost"] = float(cost)
    return out


def environment(run_dir: Path, *, role: str, task_id: str | None = None, worker: str | None = None,
                goal: str | None = None, attempt: str | None = None, model: str | None = None, base_url: str | None = None,
                token: str | None = None) -> dict[str, str]:
    """The contract's variables for one run (the model's only when there is one to reach)."""
    env = {"GITSWARM_ROLE": role, "GITSWARM_RUN_DIR": str(run_dir), "GITSWARM_PYTHON": sys.executable,
           "GITSWARM_PROMPT_FILE": str(run_dir / PROMPT_NAME), "GITSWARM_RESULT_FILE": str(run_dir / RESULT_NAME)}
    for name, value in (("GITSWARM_TASK_ID", task_id), ("GITSWARM_WORKER", worker), ("GITSWARM_GOAL", goal),
                        ("GITSWARM_ATTEMPT", attempt), ("GITSWARM_MODEL", model)):
        if value:
            env[name] = value
    if worker:  # the agent's own commits (squashed into the task's) need an author
        env.update({"GIT_AUTHOR_NAME": worker, "GIT_AUTHOR_EMAIL": f"{worker}@gitswarm",
                    "GIT_COMMITTER_NAME": worker, "GIT_COMMITTER_EMAIL": f"{worker}@gitswarm"})
    if base_url:
        env.update({"GITSWARM_BASE_URL": base_url, "OPENAI_BASE_URL": base_url, "OPENAI_API_BASE": base_url})
        env["OPENAI_API_KEY"] = token or "none"
    return env
