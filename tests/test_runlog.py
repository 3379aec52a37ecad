"""Every agent run of a task attempt kept on the hub at refs/gitswarm/runs/<task>/<attempt>
(gitswarm/runlog.py): real hub, real `serve`, real command agents, the real meter and openai client
against the fake model server; read back with plain git and with `gitswarm runs`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import gitswarm, sh
from fake_openai import fake_openai, text  # noqa: F401
from test_command_agents import SANDBOX, model_goal, run_goal, task_of

from gitswarm import names, runlog


def runs_refs(hub: Path) -> dict[str, str]:
    listed = sh("git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitswarm/runs/", cwd=hub).stdout
    return dict(line.split() for line in listed.splitlines())


def show(hub: Path, ref: str, path: str) -> str:
    return sh("git", "show", f"{ref}:{path}", cwd=hub).stdout


def files_of(hub: Path, ref: str) -> list[str]:
    return sorted(sh("git", "ls-tree", "-r", "--name-only", ref, cwd=hub).stdout.split())


def test_an_attempt_leaves_its_runs_stdout_stderr_prompt_and_result(hub: Path, tmp_path: Path) -> None:
    result = {"status": "done", "summary": "wrote out.txt", "tokens_in": 12, "tokens_out": 3, "model": "mine"}
    run_goal(hub, tmp_path, f"echo hi > out.txt; echo to-stdout; echo to-stderr >&2; "
                            f"echo '{json.dumps(result)}' > \"$GITSWARM_RESULT_FILE\"")
    task = task_of(hub)
    assert task["status"] == "done"
    ref = f"refs/gitswarm/runs/{task['id']}/1"
    assert list(runs_refs(hub)) == [ref]
    assert files_of(hub, ref) == ["1/prompt.md", "1/result.json", "1/run.yaml", "1/stderr.txt", "1/stdout.txt",
                                  "attempt.yaml"]
    assert show(hub, ref, "1/stdout.txt").strip() == "to-stdout"
    assert show(hub, ref, "1/stderr.txt").strip() == "to-stderr"
    assert "Do the work" in show(hub, ref, "1/prompt.md")
    assert json.loads(show(hub, ref, "1/result.json"))["summary"] == "wrote out.txt"
    run = yaml.safe_load(show(hub, ref, "1/run.yaml"))
    assert (run["code"], run["ended"], run["reason"], run["tokens_in"], run["model"]) == (0, "exited", "finished", 12,
                                                                                         "mine")
    attempt = yaml.safe_load(show(hub, ref, "attempt.yaml"))
    assert (attempt["task"], attempt["attempt"], attempt["worker"], attempt["outcome"], attempt["runs"]) == \
        (task["id"], 1, task["result"]["worker"], "done", 1)
    assert sh("git", "rev-list", "--count", ref, cwd=hub).stdout.strip() == "1"  # a root commit, nothing of main
    message = sh("git", "log", "-1", "--format=%s%n%(trailers)%an", ref, cwd=hub).stdout
    assert message.startswith(f"runs of {task['id']} attempt 1: done\n")
    assert f"Gitswarm-Task: {task['id']}" in message and message.strip().endswith(task["result"]["worker"])
    out = gitswarm("runs", str(hub), task["id"]).stdout
    assert "attempt 1  done  worker" in out and "tokens 15" in out and "to-stdout" in out and "to-stderr" in out
    assert "reason: finished" in out


def test_a_failed_attempt_then_its_retry_leave_two_records(hub: Path, tmp_path: Path) -> None:
    command = 'echo "try $GITSWARM_ATTEMPT"; if [ "$GITSWARM_ATTEMPT" = 1 ]; then exit 3; fi; echo done > out.txt'
    run_goal(hub, tmp_path, command)
    task = task_of(hub)
    assert (task["status"], task["attempts"]) == ("done", 2)
    first, second = (f"refs/gitswarm/runs/{task['id']}/{n}" for n in (1, 2))
    assert sorted(runs_refs(hub)) == [first, second]
    assert show(hub, first, "1/stdout.txt").strip() == "try 1" and show(hub, second, "1/stdout.txt").strip() == "try 2"
    assert yaml.safe_load(show(hub, first, "1/run.yaml"))["code"] == 3
    assert yaml.safe_load(show(hub, first, "attempt.yaml"))["outcome"].startswith("failed: ")
    assert yaml.safe_load(show(hub, second, "attempt.yaml"))["outcome"] == "done"
    out = gitswarm("runs", str(hub), task["id"], "--attempt", "1").stdout
    assert "attempt 1  failed: " in out and "attempt 2  done" in out and "code: 3" in out and "try 1" in out
    missing = gitswarm("runs", str(hub), task["id"], "--attempt", "7", check=False)
    assert missing.returncode == 2 and "no runs recorded for attempt 7" in missing.stderr


def test_a_handed_back_attempt_is_recorded_too(hub: Path, tmp_path: Path) -> None:
    """Exit 75 hands the task back without burning an attempt: its run is kept all the same, and
    the board's release (no tokens spent: no result) leaves the worker to the record's trailer."""
    command = 'if [ "$GITSWARM_ATTEMPT" = 1 ]; then echo busy; exit 75; fi; echo done > out.txt'
    run_goal(hub, tmp_path, command, max_attempts="1")
    task = task_of(hub)
    first = f"refs/gitswarm/runs/{task['id']}/1"
    assert first in runs_refs(hub) and show(hub, first, "1/stdout.txt").strip() == "busy"
    assert yaml.safe_load(show(hub, first, "attempt.yaml"))["outcome"].startswith("handed back: ")


def test_a_huge_stdout_is_cut_with_a_marker(hub: Path, tmp_path: Path) -> None:
    run_goal(hub, tmp_path, "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END; echo hi > out.txt",
             max_output=4000000)
    ref = f"refs/gitswarm/runs/{task_of(hub)['id']}/1"
    out = show(hub, ref, "1/stdout.txt")
    assert len(out.encode()) <= runlog.MAX_FILE_BYTES
    assert "bytes cut here: over the record's limit" in out and out.rstrip().endswith("THE-END")


def test_cut_text_and_jsonl_stay_within_bounds_and_valid() -> None:
    data = runlog.cut_text("é" * 100_000, 1000)
    assert len(data) <= 1000 and data.decode("utf-8").endswith("é") and b"bytes cut here" in data
    lines = runlog.cut_jsonl([{"n": i, "body": "y" * 300} for i in range(100)] + [{"big": "z" * 5000}], 4000)
    assert len(lines) <= 4000
    parsed = [json.loads(line) for line in lines.decode().splitlines()]
    assert parsed[0]["n"] == 0 and "exchanges cut" in parsed[-1]["note"]


@SANDBOX
def test_the_transcript_of_the_metered_model_calls_is_kept(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           fake_openai) -> None:
    for _ in range(2):
        fake_openai.enqueue(text("hello", usage=(100, 20)))
    model_goal(hub, tmp_path, monkeypatch, fake_openai, 2)
    task = task_of(hub)
    ref = f"refs/gitswarm/runs/{task['id']}/1"
    lines = [json.loads(line) for line in show(hub, ref, "1/transcript.jsonl").splitlines()]
    assert len(lines) == 2 and "hello" in json.dumps(lines[0])
    assert "sk-host-secret" not in show(hub, ref, "1/transcript.jsonl")
    run = yaml.safe_load(show(hub, ref, "1/run.yaml"))
    assert (run["tokens_in"], run["tokens_out"], run["model"]) == (200, 40, "m1")
    assert "transcript: 2 exchanges" in gitswarm("runs", str(hub), task["id"]).stdout


def test_the_hub_folds_ended_tasks_records_into_one_archive_ref(hub: Path, tmp_path: Path) -> None:
    """Every push advertises every ref of the hub: the daemon folds the records of ended tasks into
    refs/gitswarm/archive/runs (gitswarm/runarchive.py) and deletes their refs in one transaction;
    `gitswarm runs` and plain git still read them, and nothing is folded twice."""
    from gitswarm import runarchive
    from gitswarm.board import Board

    run_goal(hub, tmp_path, "echo hi > out.txt; echo to-stdout")
    task = task_of(hub)
    live = f"refs/gitswarm/runs/{task['id']}/1"
    record_tree = sh("git", "rev-parse", f"{live}^{{tree}}", cwd=hub).stdout.strip()
    lines: list[str] = []
    with Board(str(hub)) as board:
        board.refresh()
        assert runarchive.fold(hub, board, lines.append) == 0  # ended under FOLD_AFTER ago: kept live
        assert runarchive.fold(hub, board, lines.append, after=0) == 1
        assert runarchive.fold(hub, board, lines.append, after=0) == 0
    assert runs_refs(hub) == {}
    where = f"{names.ARCHIVE}:{task['id'][2:4]}/{task['id']}/1"
    assert sh("git", "rev-parse", where, cwd=hub).stdout.strip() == record_tree  # the record's tree, as it was
    assert show(hub, names.ARCHIVE, f"{task['id'][2:4]}/{task['id']}/1/1/stdout.txt").strip() == "to-stdout"
    assert lines == [f"folded the runs of 1 attempt(s) of 1 ended task(s) into {names.ARCHIVE}"]
    out = gitswarm("runs", str(hub), task["id"]).stdout
    assert "attempt 1  done  worker" in out and where in out and "to-stdout" in out


def test_a_dead_tasks_attempts_are_all_folded_and_read_back_in_order(hub: Path, tmp_path: Path) -> None:
    from gitswarm import runarchive
    from gitswarm.board import Board

    run_goal(hub, tmp_path, "echo attempt $GITSWARM_ATTEMPT; exit 3", max_attempts="2")
    task = task_of(hub)
    assert task["status"] == "dead" and len(runs_refs(hub)) == 2
    with Board(str(hub)) as board:
        board.refresh()
        assert runarchive.fold(hub, board, lambda _: None, after=0) == 2
    assert runs_refs(hub) == {}
    out = gitswarm("runs", str(hub), task["id"]).stdout
    assert out.index("attempt 1  failed") < out.index("attempt 2  failed")  # oldest first, from the archive
    assert f"attempt 2: {names.ARCHIVE}:{task['id'][2:4]}/{task['id']}/2" in out and "attempt 2" in out
    assert "code: 3" in gitswarm("runs", str(hub), task["id"], "--attempt", "1").stdout
