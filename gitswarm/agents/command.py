"""The `command` backend: an external agent program (a CLI coding agent, a script) does the step.

The program runs through `/bin/sh -c` in `cwd`, in a process group of its own (and in the
sandbox, a pid namespace of its own), with the prompt on stdin or in a file (path in
GITSWARM_PROMPT_FILE, and substituted for `{prompt_file}`). When the wall time is up the whole
group gets SIGTERM, then SIGKILL; whatever the program left running in its group when it exits is
ended the same way (`run_killable`, which the bash tool and the goal's tests and checks use too).
Output is read by threads that keep only a bounded head and tail, so a chatty program cannot fill
memory and a stray process holding the pipe cannot hang us.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Literal

from gitswarm.agents import AgentResult, Limits, Trace
from gitswarm.reaper import processes
from gitswarm.agents.contract import HANDBACK_EXIT, PROMPT_NAME, RESULT_NAME, ResultInvalid, read_result
from gitswarm.text import printable

SUMMARY_CHARS = 2000


class _Capture(threading.Thread):
    """Reads a pipe to the end, keeping `keep` bytes (half from the start, half from the end)."""

    def __init__(self, pipe: IO[bytes], keep: int):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.keep_head, self.keep_tail = keep // 2, keep - keep // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(65536):  # type: ignore[attr-defined]
                self.total += len(chunk)
                room = self.keep_head - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    del self.tail[:-self.keep_tail or len(self.tail)]
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        head = self.head.decode(errors="replace")
        tail = self.tail.decode(errors="replace")
        cut = self.total - len(self.head) - len(self.tail)
        return head + (f"\n[... {cut} bytes cut ...]\n" if cut > 0 else "") + tail


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass  # the program did not read its stdin: its business
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an orphan's zombie stays in
    the group until init reaps it, which some container inits do only every few seconds."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not os.path.isdir("/proc"):
        return True
    return any(group == pgid and state != "Z" for _, state, _, group in processes())


def _freeze(pgid: int, wait: float = 1.0) -> list[int]:
    """Stop every process of the group (none can start another), then list what must get SIGKILL:
    their children that left it (the sandbox's pid 1, in a session of its own, or a child that
    called setsid) and the sandbox's pid 1 while still in the group. Killing bwrap alone is not
    enough: killed while it sets up, its pid 1 has no parent-death signal yet and lives on."""
    try:
        os.killpg(pgid, signal.SIGSTOP)
    except ProcessLookupError:
        return []
    if not os.path.isdir("/proc"):
        return []
    deadline = time.monotonic() + wait
    while True:
        procs = processes()
        members = {pid: state for pid, state, _, group in procs if group == pgid and state != "Z"}
        if all(state in "tT" for state in members.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    left = [pid for pid, state, ppid, group in procs if ppid in members and group != pgid and state != "Z"]
    return left + [pid for pid in members if _namespace_init(pid)]


def _namespace_init(pid: int) -> bool:
    """Whether the process is pid 1 of a pid namespace below ours (a sandbox's, caught before it
    left bwrap's group): it ignores SIGTERM from outside, and its death ends the namespace."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] == "1"
    except OSError:
        pass
    return False


def _gone(pids: list[int], until: float) -> None:
    """Wait (until a monotonic deadline) for processes to exit: a sandbox's pid 1 exits only once
    every process of its namespace did."""
    alive = lambda pid: Path(f"/proc/{pid}/stat").exists() and \
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[:1] != ["Z"]  # noqa: E731
    while time.monotonic() < until:
        try:
            if not any(alive(pid) for pid in pids):
                return
        except OSError:
            continue
        time.sleep(0.01)


def kill_group(pgid: int, grace: float, reap: Callable[[], object] = lambda: None) -> None:
    """End the process group and what it started: its members' children that left the group (the
    sandbox's pid namespace, setsid children) get SIGKILL at once; the group SIGTERM, then SIGKILL
    if it has not emptied within `grace` seconds. `reap` collects the leader once it exits (a
    zombie still counts as a member of the group)."""
    escaped = _freeze(pgid)
    for pid in escaped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)
    except ProcessLookupError:
        _gone(escaped, time.monotonic() + max(grace, 1.0))
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _gone(escaped, time.monotonic() + max(grace, 1.0))


@dataclass
class Ran:
    """How a command ended: `ended` is "exited", "time" (killed at its timeout) or "stopped"
    (killed because `stop` was set); `stdout` and `stderr` are bounded head-and-tail captures."""

    code: int
    stdout: str
    stderr: str
    ended: str
    elapsed: float


def run_killable(argv: list[str], cwd: Path, env: dict[str, str] | None, timeout: float, *,
                 stdin: bytes | None = None, stop: threading.Event | None = None, keep: int = 20_000,
                 merge: bool = False, grace: float = 5.0) -> Ran:
    """Run argv in a process group of its own (in the sandbox, its first process is bwrap: the
    whole pid namespace dies with it) and end it whole: at `timeout` or when `stop` is set, SIGTERM
    then SIGKILL after `grace`; when it exits, whatever it left running in its group. The one way
    agents' commands (command agents, the bash tool, tests and checks) are run and killed.
    `merge`: stderr goes to stdout, in order."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else subprocess.PIPE)
    captures = [_Capture(pipe, keep) for pipe in (proc.stdout, proc.stderr) if pipe is not None]
    for capture in captures:
        capture.start()
    if proc.stdin is not None:
        threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
    ended = "exited"
    deadline = start + timeout
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            ended = "stopped"
            break
        if time.monotonic() >= deadline:
            ended = "time"
            break
        try:
            proc.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc.pid, grace if ended != "exited" else 0.5, proc.poll)  # the command, or what it left behind
    code = proc.wait()
    for capture in captures:
        capture.join(1.0)
    texts = [c.text().strip() for c in captures] + [""]
    return Ran(code, texts[0], texts[1], ended, time.monotonic() - start)


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
