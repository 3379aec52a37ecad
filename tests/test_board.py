"""The board client against a real hub: ready order, claims, the holder's rules, races re-applied."""

from __future__ import annotations

import json
import re

import pytest

from gitswarm.board import Board
from gitswarm.errors import GitswarmError
from gitswarm.task import new_task

from conftest import gitswarm, sh


def log(hub, *args):
    return sh("git", "log", "--format=%s", *args, "tasks", cwd=hub).stdout.splitlines()


def main_commit(hub, tmp_path, name="work.txt", message="some work") -> str:
    """Push a plain commit to the hub's main; its id."""
    clone = tmp_path / f"main-{name}"
    if not clone.exists():
        sh("git", "clone", "-q", str(hub), str(clone))
    (clone / name).write_text(message + "\n")
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", message, cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    return sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()


def test_claims_follow_priority_then_age_and_wait_for_dependencies(hub):
    with Board(str(hub)) as board:
        low, = board.add([new_task("low", priority=0)])
        high, = board.add([new_task("high", priority=10)])
        old_mid, = board.add([new_task("mid, older", priority=5)])
        new_mid, = board.add([new_task("mid, newer", priority=5)])
        blocked, = board.add([new_task("urgent but blocked", priority=99, depends_on=[low.id])])
        order = [board.claim("w").id for _ in range(4)]
        assert order == [high.id, old_mid.id, new_mid.id, low.id]
        assert board.claim("w") is None  # the blocked one waits for low
        board.complete(low.id, "w", "done")
        assert board.claim("w").id == blocked.id


def test_a_dependency_that_failed_keeps_blocking(hub):
    with Board(str(hub)) as board:
        a, = board.add([new_task("a")])
        b, = board.add([new_task("b", depends_on=[a.id])])
        board.claim("w")
        board.fail(a.id, "w", "broke")
        assert board.claim("w") is None
        board.reopen(a.id)
        again = board.claim("w")
        assert again.id == a.id and again.claim.token == 2 and again.attempts == 2
        board.complete(a.id, "w", "ok", token=2)
        assert board.claim("w").id == b.id


def test_claim_filters_by_kind_and_goal(hub):
    with Board(str(hub)) as board:
        plan, work_a, work_b = board.add([new_task("plan it", kind="plan", goal="css"),
                                          new_task("work a", goal="css"),
                                          new_task("work b", goal="html")])
        assert board.claim("p", kinds=["plan"]).id == plan.id
        assert board.claim("w", goal="html").id == work_b.id
        assert board.claim("w", kinds=["plan"]) is None
        assert board.claim("w", kinds=["work"], goal="css").id == work_a.id


def test_adding_many_tasks_is_one_commit(hub):
    with Board(str(hub)) as board:
        first = new_task("first")
        tasks = board.add([first] + [new_task(f"task {i}", depends_on=[first.id]) for i in range(9)])
    assert len(tasks) == 10
    subjects = log(hub)
    assert len(subjects) == 2 and subjects[0].startswith("add 10 tasks: first, task 0")
    body = sh("git", "log", "-1", "--format=%b", "tasks", cwd=hub).stdout
    assert body.count("Gitswarm-Task: ") == 10 and "Gitswarm-Action: add" in body


def test_only_the_holder_ends_a_claim(hub, tmp_path):
    with Board(str(hub)) as board:
        t, = board.add([new_task("guarded")])
        board.claim("alice")
        with pytest.raises(GitswarmError, match="claimed by alice"):
            board.complete(t.id, "mallory", "mine now")
        with pytest.raises(GitswarmError, match="token 1"):
            board.complete(t.id, "alice", "stale token", token=7)
        with pytest.raises(GitswarmError, match="claimed by alice"):
            board.release(t.id, "mallory")
        board.release(t.id, "alice")
        assert board.claim("bob").claim.token == 2
        with pytest.raises(GitswarmError, match="claimed by bob"):
            board.complete(t.id, "alice", "too late", token=1)
        with pytest.raises(GitswarmError, match="is not on main"):
            board.complete(t.id, "bob", "done", commit="a" * 40)
        board.complete(t.id, "bob", "done")
        with pytest.raises(GitswarmError, match="it is done"):
            board.fail(t.id, "bob", "again")
        with pytest.raises(GitswarmError, match="only an open or claimed task"):
            board.cancel(t.id, "no")
    assert log(hub)[0] == f"done {t.id}: guarded (bob)"


def test_a_stale_view_loses_the_race_and_takes_the_next_task(hub):
    with Board(str(hub)) as first, Board(str(hub)) as second:
        a, b = first.add([new_task("a", priority=2), new_task("b", priority=1)])
        second.refresh()  # sees both open
        assert first.claim("w1").id == a.id
        got = second.claim("w2")  # pushes a claim of a: the hub leaves it out; fetches, claims b
        assert got.id == b.id
        assert second.rejected_pushes == 0 and second.pushes == 2
    with Board(str(hub)) as fresh:
        fresh.refresh()
        assert {t.id: t.claim.worker for t in fresh.tasks()} == {a.id: "w1", b.id: "w2"}


def test_a_stale_view_never_says_nothing_is_ready(hub):
    with Board(str(hub)) as stale, Board(str(hub)) as other:
        stale.refresh()  # an empty board
        t, = other.add([new_task("new work")])
        assert stale.claim("w").id == t.id


def test_tasks_by_status_keep_the_age_order(hub):
    with Board(str(hub)) as board:
        made = board.add([new_task(f"task {i}", created=f"2026-11-25T08:00:0{i}Z") for i in range(6)])
        for _ in range(4):
            board.claim("w")
        claimed = [t for t in board.tasks() if t.status == "claimed"]
        board.fail(claimed[1].id, "w", "broke", token=claimed[1].claim.token)
        assert [t.id for t in board.tasks()] == [t.id for t in made]
        assert [t.id for t in board.tasks("claimed")] == [claimed[0].id, claimed[2].id, claimed[3].id]
        assert [t.id for t in board.tasks("claimed", "failed")] == [t.id for t in claimed]
        assert board.tasks("done") == []


def test_cancel_a_claimed_task(hub):
    with Board(str(hub)) as board:
        t, = board.add([new_task("not needed")])
        board.claim("w")
        cancelled = board.cancel(t.id, "plan changed")
        assert cancelled.status == "cancelled" and cancelled.result["reason"] == "plan changed"
        with pytest.raises(GitswarmError, match="it is cancelled"):
            board.complete(t.id, "w", "late")


def test_no_board_at_the_remote(tmp_path):
    plain = tmp_path / "plain.git"
    sh("git", "init", "-q", "--bare", str(plain))
    with Board(str(plain)) as board, pytest.raises(GitswarmError, match="no tasks branch") as e:
        board.refresh()
    assert "gitswarm init" in e.value.hint


# ---------------------------------------------------------------- the command line, as a user runs it

def test_cli_round_trip(hub, tmp_path):
    url = f"file://{hub}"  # any git remote: a file:// URL here
    landed = main_commit(hub, tmp_path)
    a = gitswarm("task", "add", url, "--title", "Parse CSS selectors", "--description", "all of CSS 3").stdout.strip()
    b = gitswarm("task", "add", str(hub), "--title", "Then this", "--depends-on", a, "--priority", "3").stdout.strip()
    assert gitswarm("claim", url, "--worker", "alice").stdout.strip() == a
    none = gitswarm("claim", url, "--worker", "bob", check=False)
    assert none.returncode == 1 and none.stderr.strip().count("\n") == 0 and "no ready task" in none.stderr
    # a commit is a task's result only when it is the task's own (its Gitswarm-Task trailer)...
    refused = gitswarm("complete", url, a, "--worker", "alice", "--commit", landed, "--summary", "parsed",
                       check=False, cwd=tmp_path / "main-work.txt")
    assert refused.returncode != 0 and "rejected refs/heads/tasks" in refused.stderr, refused.stderr
    assert f"does not name {a}" in refused.stderr
    # ...and it lands on main together with the completion, from the clone it was made in
    clone = tmp_path / "main-work.txt"
    (clone / "parser.txt").write_text("a parser\n")
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", f"Parse CSS selectors\n\nGitswarm-Task: {a}", cwd=clone)
    mine = sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()
    said = gitswarm("complete", url, a, "--worker", "alice", "--commit", "HEAD", "--summary", "parsed", cwd=clone)
    assert f"{a} done, {mine[:10]} landed on main" in said.stdout
    assert sh("git", "rev-parse", "main", cwd=hub).stdout.strip() == mine
    landed = mine
    assert gitswarm("claim", url, "--worker", "bob").stdout.strip() == b
    gitswarm("fail", url, b, "--worker", "bob", "--reason", "tests fail")
    gitswarm("reopen", url, b)
    assert gitswarm("claim", url, "--worker", "carol").stdout.strip() == b
    gitswarm("release", url, b, "--worker", "carol")
    doc = json.loads(gitswarm("status", url, "--json").stdout)
    by_id = {t["id"]: t for t in doc["tasks"]}
    assert set(by_id[a]) == {"id", "title", "description", "kind", "goal", "parent", "depends_on", "priority",
                             "status", "attempts", "claim", "result", "created"}
    assert by_id[a]["status"] == "done" and by_id[a]["result"]["commit"] == landed
    assert by_id[b]["status"] == "open" and by_id[b]["attempts"] == 2 and by_id[b]["depends_on"] == [a]
    table = gitswarm("status", url).stdout
    assert "open 1  done 1" in table and re.search(r" by alice +Parse CSS selectors$", table, re.M), table
    clone = tmp_path / "reader"
    sh("git", "clone", "-q", url, str(clone))
    subjects = sh("git", "log", "--format=%s", "origin/tasks", cwd=clone).stdout.splitlines()
    assert subjects[:3] == [f"release {b}: Then this (carol)", f"claim {b}: Then this (carol)", f"reopen {b}: Then this"]
    assert f"claim {a}: Parse CSS selectors (alice)" in subjects


def test_cli_errors_are_one_sentence_and_a_hint(hub):
    t = gitswarm("task", "add", str(hub), "--title", "x").stdout.strip()
    result = gitswarm("complete", str(hub), t, "--worker", "alice", "--summary", "s", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"gitswarm: error: cannot complete {t}: it is open") and "hint:" in result.stderr
    bad = gitswarm("task", "add", str(hub), "--title", "two\nlines", check=False)
    assert bad.returncode == 2 and "title: must be a single line" in bad.stderr
    missing = gitswarm("task", "add", str(hub), "--title", "x", "--depends-on", "t-00000000", check=False)
    assert missing.returncode == 2 and "depends_on t-00000000: no such task" in missing.stderr
    assert "Traceback" not in bad.stderr + missing.stderr + result.stderr


def test_cli_adds_a_file_of_tasks_in_one_commit(hub, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("- id: t-parse\n  title: Parse\n  priority: 1\n"
                    "- title: Render\n  depends_on: [t-parse]\n  description: after parsing\n")
    ids = gitswarm("task", "add", str(hub), "--from", str(plan)).stdout.split()
    assert ids[0] == "t-parse" and len(ids) == 2
    assert log(hub)[0] == "add 2 tasks: Parse, Render"
    shown = gitswarm("task", "show", str(hub), ids[1]).stdout
    assert "depends_on:\n- t-parse" in shown
    broken = tmp_path / "broken.yaml"
    broken.write_text("- title: ok\n- description: no title\n")
    result = gitswarm("task", "add", str(hub), "--from", str(broken), check=False)
    assert result.returncode == 2 and "broken.yaml: item 2: needs at least a title" in result.stderr
