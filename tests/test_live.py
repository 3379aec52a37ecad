"""What `serve` shows a person: on a terminal (a real pty) a live view of goals, agents and the
landing queue; off a terminal plain lines without an escape code; `--log-format json` an object
per line, an agent's hostile output included; NO_COLOR; -q. Real hubs, real `serve` processes."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Callable

from test_swarm import TWO_TASKS, push_goal

from gitswarm import logs

ESCAPE = re.compile(r"\x1b")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
HOSTILE = """---
check: "true"
tasks:
  - title: Say hostile things
    run: "printf 'evil\\\\033]0;owned\\\\007\\\\033[31mred\\\\rcarriage\\\\nsecond line\\\\n' >&2; exit 3"
---
A task whose command fails, writing escape sequences and newlines to its stderr.
"""
FAILS_ONCE = "max_attempts: 1\n"


def terminal_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment as a colour terminal's, without NO_COLOR or a size, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color", **(extra or {})}


def serve(hub: Path, cwd: Path, *args: str, tty: bool, env: dict[str, str] | None = None,
          timeout: float = 180) -> tuple[int, str]:
    """`gitswarm serve HUB --until-done` as a process: on a pty (120x40) or with its output in
    pipes. (exit code, all it wrote)."""
    argv = [sys.executable, "-m", "gitswarm", "serve", str(hub), "--until-done", "--workers", "2",
            "--planners", "0", "--id", "t", *args]
    environ = terminal_env(env)
    if not tty:
        proc = subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr
    return run_on_pty(argv, cwd, env=environ, timeout=timeout)


def run_on_pty(argv: list[str], cwd: Path, while_running: Callable[[subprocess.Popen], None] | None = None,
               env: dict[str, str] | None = None, timeout: float = 180) -> tuple[int, str]:
    """`argv` with a pty (120x40) for its stdin, stdout and stderr; `while_running(proc)` called
    meanwhile (to stop it). (exit code, all it wrote)."""
    env = terminal_env() if env is None else env
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # the child blocks on a full pty: read all of it as it comes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side is gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if while_running is not None:
            while_running(proc)
        code = proc.wait(timeout=timeout)
    finally:
        proc.kill()
    reader.join(timeout=30)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def colours(output: str) -> list[str]:
    """The SGR sequences of `output` that set a colour (30-38, 40-48, 90-97, 100-107)."""
    found = []
    for params in SGR.findall(output):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 38 or 40 <= int(p) <= 48 or 90 <= int(p) <= 107):
                found.append(params)
                break
    return found


def test_serve_on_a_terminal_shows_the_live_view_and_exits_cleanly(hub: Path, tmp_path: Path) -> None:
    slow = TWO_TASKS.replace('run: "echo a > a.txt"', 'run: "sleep 3; echo a > a.txt"')  # frames while it runs
    push_goal(hub, tmp_path, "two", slow.replace("---\ncheck:", "---\ntest: \"true\"\ncheck:", 1))
    code, out = serve(hub, tmp_path, tty=True)
    assert code == 0, out
    assert re.search(r"train: (idle|testing #\d).*; last: batch #\d+ green", SGR.sub("", out)), out
    assert "gitswarm serve" in out and "goal two" in out, out
    assert "t-w0" in out and "t-w1" in out  # a line per agent
    assert "done 2" in out  # the goal's tasks by state, in the last frame
    assert "landing queue" in out and "tokens" in out and "waits:" in out
    assert "landed " in out  # the recent landings
    assert "goal two: done after 1 cycle(s)" in out  # log lines scroll above the view
    assert colours(out), "a terminal without NO_COLOR gets colour"


def test_no_color_on_a_terminal_gives_no_colour_codes(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    code, out = serve(hub, tmp_path, tty=True, env={"NO_COLOR": "1"})
    assert code == 0, out
    assert "goal two" in out and "done 2" in out, out  # the view is there, without colour
    assert colours(out) == [], colours(out)[:5]


def test_an_agents_hostile_output_reaches_the_terminal_as_text(hub: Path, tmp_path: Path) -> None:
    """Its stderr (a title-setting OSC, a bell, a colour, a carriage return) in the log lines and
    in the view's failures: none of its sequences reach the terminal."""
    push_goal(hub, tmp_path, "evil", HOSTILE, files={".gitswarm.yaml": FAILS_ONCE})
    code, out = serve(hub, tmp_path, tty=True)
    assert code == 0, out
    assert "\x1b]" not in out and "\x07" not in out and "owned" not in out, repr(out)
    assert "\x1b[31mred" not in out and "evilred" in out  # its own colour gone, its text kept
    text = SGR.sub("", out)
    assert re.search(r"dead t-\w+ Say hostile things: failed 1 times", text), text  # the view's failures


def test_without_a_terminal_serve_prints_plain_lines_without_escape_codes(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    code, out = serve(hub, tmp_path, tty=False)
    assert code == 0, out
    assert not ESCAPE.search(out), repr(out[:500])
    lines = out.splitlines()
    assert any(re.match(r"\d\d:\d\d:\d\d t-w\d: claimed t-", line) for line in lines), out
    assert any(line.endswith("goal two: done after 1 cycle(s)") for line in lines), out
    assert "waits:" not in out  # no view


def test_plain_or_a_dumb_terminal_gives_lines(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "two", TWO_TASKS)
    code, out = serve(hub, tmp_path, "--plain", tty=True, env={"NO_COLOR": "1"})
    assert code == 0, out
    assert "waits:" not in out and "goal two: done after 1 cycle(s)" in out, out
    push_goal(hub, tmp_path, "two", TWO_TASKS.replace("b after a", "b after a, again"))
    code, out = serve(hub, tmp_path, tty=True, env={"TERM": "dumb"})
    assert code == 0, out
    assert "\x1b" not in out and "goal two: planning" in out, repr(out)


def test_json_lines_each_parse_and_carry_the_fields_hostile_output_included(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "evil", HOSTILE, files={".gitswarm.yaml": FAILS_ONCE})
    code, out = serve(hub, tmp_path, "--log-format", "json", tty=False)
    assert code == 0, out  # its check passes with its only task dead
    docs = [json.loads(line) for line in out.splitlines()]  # every line is one object
    assert docs and all(set(d) >= {"time", "level", "logger", "message"} for d in docs), docs
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["time"]) for d in docs)
    assert {d["logger"] for d in docs} == {"gitswarm"}
    claimed = [d for d in docs if " claimed t-" in d["message"]]
    assert claimed and claimed[0]["agent"].startswith("t-w") and claimed[0]["task"].startswith("t-"), claimed
    failed = [d for d in docs if "failed" in d["message"] and "task" in d and d.get("agent")]
    assert failed and failed[0]["level"] == "WARNING", docs
    hostile = [d for d in docs if "evil" in d["message"]]
    assert hostile, docs
    for d in hostile:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", d["message"]), d  # no escape, no CR, no BEL
        assert "owned" not in d["message"]  # the title-setting sequence went whole
    assert any("second line" in d["message"] for d in hostile)  # its newline is inside one JSON line
    assert any(d["message"].startswith("goal evil:") and d.get("goal") == "evil" for d in docs), docs


def test_quiet_hides_info_lines_and_keeps_warnings(hub: Path, tmp_path: Path) -> None:
    push_goal(hub, tmp_path, "evil", HOSTILE, files={".gitswarm.yaml": FAILS_ONCE})
    code, out = serve(hub, tmp_path, "-q", tty=False)
    assert code == 0, out
    assert " claimed t-" not in out and "serve " not in out, out  # info lines
    assert re.search(r"t-w\d: t-\w+ failed: ", out), out  # the failure, a warning


def test_levels_and_fields_read_from_a_line() -> None:
    import logging

    assert logs.level_of("t-w0: claimed t-1a2b3c4d 'Write a'") == logging.INFO
    assert logs.level_of("t-w0: t-1a2b3c4d failed: command exited 3\nerror: Traceback") == logging.WARNING
    assert logs.level_of("error: GitswarmError: the hub is gone") == logging.ERROR
    assert logs.level_of("t-w1: RuntimeError: boom") == logging.ERROR
    assert logs.level_of("meter: t-w0: POST /v1/chat/completions 200 12 tokens") == logging.DEBUG
    assert logs.fields_of("t-w0: claimed t-1a2b3c4d 'Write a'") == {"agent": "t-w0", "task": "t-1a2b3c4d"}
    assert logs.fields_of("judge: greet cycle 2: done: ok") == {"goal": "greet"}
    assert logs.fields_of("goal greet: planning (goals/greet.md at 0123456789)") == {"goal": "greet"}
    assert logs.fields_of("vm-root: greet: 3 tasks created (ok)") == {"agent": "vm-root", "goal": "greet"}


def test_a_failing_view_falls_back_to_lines_and_the_run_goes_on() -> None:
    """A view that cannot draw (here: a board that raises on every read) gives up after a few
    frames, says why, and the log goes on as plain lines; what it wraps returns as usual."""
    import io
    import time

    from gitswarm.liveview import FAILURES_TO_GIVE_UP, run_with_view

    class Unreadable:
        def tasks(self):
            raise RuntimeError("board unreadable")

        def records(self):
            return {}

    out = io.StringIO()
    handler = logs.setup("plain", 0, stream=out, terminal=True)
    handlers: list = []

    def run() -> int:
        deadline = time.time() + 60
        while time.time() < deadline and "showing plain lines" not in out.getvalue():
            time.sleep(0.05)
        handlers.extend(logs.logger.handlers)
        logs.emit("t-w0: claimed t-1a2b3c4d 'after the view'")
        return 7

    try:
        assert run_with_view(run, handler, Unreadable(), lambda: ["t-w0"], "test") == 7
    finally:
        logs.setup()
    text = out.getvalue()
    assert f"live view: stopped after {FAILURES_TO_GIVE_UP} failed frames (RuntimeError: board unreadable); " \
           "showing plain lines instead" in text, text
    assert re.search(r"^\d\d:\d\d:\d\d t-w0: claimed t-1a2b3c4d 'after the view'$", text, re.M), text
    assert [type(h) for h in handlers] == [logs.LineHandler]  # no colour, no view: lines


def test_a_line_may_carry_its_level_and_verbosity_chooses_what_is_written() -> None:
    import io

    out = io.StringIO()
    try:
        for verbosity in (-1, 0, 1):
            logs.setup("json", verbosity, stream=out)
            logs.emit(logs.warning("planner greet: the model said nothing useful"))
            logs.emit("goal greet: planning (goals/greet.md at 0123456789)")
            logs.emit("meter: t-w0: POST /v1/chat/completions 200 12 tokens")
            logs.emit(logs.error("t-w0: Stopping: \x1b[2Jcleared\r\nthe screen"))
            out.write("--\n")
    finally:
        logs.setup()
    runs = [[json.loads(line) for line in block.splitlines()] for block in out.getvalue().split("--\n")[:3]]
    assert [[d["level"] for d in run] for run in runs] == [
        ["WARNING", "ERROR"], ["WARNING", "INFO", "ERROR"], ["WARNING", "INFO", "DEBUG", "ERROR"]]
    assert runs[0][0]["goal"] == "greet" and runs[0][1]["agent"] == "t-w0"
    assert runs[0][1]["message"] == "t-w0: Stopping: cleared\nthe screen"


WORKER_SETTINGS = 'worker: {backend: command, command: "true"}\n'


def test_worker_on_a_terminal_shows_its_agents_and_stops_on_ctrl_c(hub: Path, tmp_path: Path) -> None:
    """`gitswarm worker` against a hub: its agents and the task it did in the view; SIGINT stops it."""
    import signal
    import time

    from conftest import gitswarm, sh

    from gitswarm.task import task_path

    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / ".gitswarm.yaml").write_text(WORKER_SETTINGS)
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "settings", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    task_id = gitswarm("task", "add", str(hub), "--title", "Say nothing").stdout.split()[-1]

    def done() -> bool:
        return "status: done" in sh("git", "show", f"tasks:{task_path(task_id)}", cwd=hub, check=False).stdout

    def stop_when_done(proc: subprocess.Popen) -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not done() and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # the view draws a last frame as it stops

    code, out = run_on_pty([sys.executable, "-m", "gitswarm", "worker", str(hub), "--id", "w", "-n", "2",
                            "--poll", "0.2s"], tmp_path, stop_when_done)
    assert done(), out
    assert code in (0, 130), out  # 130 once Ctrl-C exits a worker pool as it does serve (issue 14, part 1)
    assert "gitswarm worker w on" in out and "w-w0" in out and "w-w1" in out, out
    assert "tasks: done 1" in out, out
    assert f"done {task_id} Say nothing" in SGR.sub("", out), out
    assert "stopping: agents are told to stop" in out


def test_a_frame_shows_pushed_text_as_text_and_keeps_to_a_screen() -> None:
    """What a pusher wrote (a title with rich markup, a reason with an escape sequence) is shown
    literally; many goals and agents are cut to a screenful, saying how many more."""
    import io
    import time

    from rich.console import Console

    from gitswarm import task as T
    from gitswarm.liveview import AGENTS_SHOWN, GOALS_SHOWN, frame
    from gitswarm.record import GoalRecord

    failed = T.new_task("[bold red]Parse[/] selectors", goal="g0")
    failed = T.Task(**{**failed.__dict__, "status": "failed",
                       "result": {"worker": "x-w1", "at": T.now(), "reason": "boom \x1b]0;owned\x07\nsecond"}})
    records = {f"g{i}": GoalRecord(f"g{i}") for i in range(GOALS_SHOWN + 3)}
    agents = [f"x-w{i}" for i in range(AGENTS_SHOWN + 5)]
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(
        frame("serve hub.git", agents, [failed], records, None, time.time(), time.time()))
    text = out.getvalue()
    assert "failed " + failed.id + " [bold red]Parse[/] selectors: boom" in text, text
    assert "owned" not in text and "second" not in text and "\x1b" not in text
    assert "... 3 more goals" in text and "... 5 more agents" in text
    assert text.count("\n  x-w") == AGENTS_SHOWN


def test_an_error_that_stops_serve_is_a_json_line_too(tmp_path: Path) -> None:
    """`serve --log-format json` on a folder that is no hub: its refusal, with the hint, is one
    JSON object like every other line."""
    (tmp_path / "nohub").mkdir()
    proc = subprocess.run([sys.executable, "-m", "gitswarm", "serve", str(tmp_path / "nohub"), "--log-format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    docs = [json.loads(line) for line in proc.stderr.splitlines()]
    assert len(docs) == 1 and docs[0]["level"] == "ERROR", docs
    assert "is not a gitswarm hub" in docs[0]["message"] and "gitswarm init" in docs[0]["hint"], docs
