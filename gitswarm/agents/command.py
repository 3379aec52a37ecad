"""The `command` backend: an external agent program (a CLI coding agent, a script) does the step.

The program runs through `/bin/sh -c` in `cwd`, in a process group of its own (and in the
sandbox, a pid namespace of its own), with the prompt on stdin or in a file (path in
GITSWARM_PROMPT_FILE, and substituted for `{prompt_file}`). When the wall time is up the whole
group gets SIGTERM, then SIGKILL; whatever the program left running in its group when it exits is
ended the same way (gitswarm/proc.py's `run_killable`, which the bash tool and the goal's tests and
checks use too). Only a bounded head and tail of its output is kept.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Literal

from gitswarm.agents import AgentResult, Limits, Trace
from gitswarm.proc import Ran, run_killable
from gitswarm.agents.contract import HANDBACK_EXIT, PROMPT_NAME, RESULT_NAME, ResultInvalid, read_result
from gitswarm.text import printable

SUMMARY_CHARS = 2000


def run_command_agent(command: str, prompt: str, cwd: Path, limits: Limits, env: dict[str, str] | None = None,
                      prompt_mode: Literal["stdin", "file"] = "stdin", *, grace: float = 5.0,
                      stop: threading.Event | None = None,
                      wrap: Callable[[list[str], list[Path], list[Path]], list[str]] | None = None,
                      contract: Callable[[Path], dict[str, str]] | None = None) -> AgentResult:
    """Run `command` as the agent, under the contract of gitswarm.agents.contract: a run folder of
    its own (GITSWARM_RUN_DIR: the prompt file, where it may write its result file), the prompt on
    stdin (prompt mode stdin) and in the file (`{prompt_file}` in the command is its path).
    The result file decides, else the exit status: 0 "finished" (the tail of stdout as summary),
    75 "handback", other "error" with the tail of stderr (or stdout); a result status `failed`
    gives "failed". Wall time exceeded: "time"; `stop` set (the swarm shuts down): "stopped", the
    program's process group killed. `wrap(argv, readable, writable)` turns the command line into the
    one to run (the sandbox), showing it the run folder. `env` is the program's whole environment
    (None: this process's); `contract(run_dir)` adds the contract's variables for this run. The
    result's `trace` keeps what the run left (output, exit status, result file) for its record."""
    if prompt_mode not in ("stdin", "file"):
        raise ValueError(f"prompt_mode must be 'stdin' or 'file', not {prompt_mode!r}")
    run_dir = Path(tempfile.mkdtemp(prefix="gitswarm-run-"))
    try:
        prompt_file = run_dir / PROMPT_NAME
        prompt_file.write_text(prompt)
        full_env = {**(os.environ if env is None else env),
                    **(contract(run_dir) if contract else {}), "GITSWARM_PROMPT_FILE": str(prompt_file),
                    "GITSWARM_RUN_DIR": str(run_dir), "GITSWARM_RESULT_FILE": str(run_dir / RESULT_NAME)}
        line = command.replace("{prompt_file}", shlex.quote(str(prompt_file)))
        argv = ["/bin/sh", "-c", line]
        if wrap is not None:
            argv = wrap(argv, [], [run_dir])
        ran = run_killable(argv, cwd, full_env, limits.wall_time, stop=stop, keep=limits.max_output, grace=grace,
                           stdin=prompt.encode() if prompt_mode == "stdin" else None)
        try:
            said = read_result(run_dir / RESULT_NAME) if ran.ended == "exited" else None
        except ResultInvalid as e:
            said, invalid = None, e
        else:
            invalid = None
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    trace = Trace(command, ran.code if ran.ended == "exited" else None, ran.ended, ran.elapsed,
                  ran.stdout, ran.stderr, prompt, said)
    reason, summary = _outcome(ran, said, limits)
    if invalid is not None:
        reason, summary = "error", f"{invalid.message}\n{invalid.hint}"
    said = said or {}
    return AgentResult(summary, reason, 1, said.get("tokens_in", 0), said.get("tokens_out", 0),
                       said.get("model") or "command", error=invalid, cost=said.get("cost"), trace=trace)


def _outcome(ran: Ran, said: dict | None, limits: Limits) -> tuple[str, str]:
    """(reason, summary) of a run from how it ended, its exit status and its result file."""
    stdout, stderr = printable(ran.stdout), printable(ran.stderr)
    tail = (stderr or stdout)[-SUMMARY_CHARS:]
    if ran.ended == "stopped":
        return "stopped", f"stopped after {ran.elapsed:.1f}s: the swarm is stopping"
    if ran.ended == "time":
        return "time", f"killed after {ran.elapsed:.1f}s (wall time {limits.wall_time:g}s)\n{tail}".strip()
    status = (said or {}).get("status")
    summary = (said or {}).get("summary") or ""
    if ran.code == HANDBACK_EXIT or status == "handback":
        return "handback", summary or f"handed back (exit {ran.code})\n{tail}".strip()
    if ran.code != 0:
        return "error", f"exit status {ran.code}\n{summary or tail}".strip()
    if status == "failed":
        return "failed", summary or f"the agent says it failed\n{tail}".strip()
    return "finished", summary or stdout[-SUMMARY_CHARS:]
