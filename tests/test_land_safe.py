"""A landing never loses work (issue 12, "First"): a worker's rebase keeps its commit, the board's
replay never completes a task with a commit that is not its own, and the hub refuses a completion
whose commit does not name its task. Real hubs, real pushes, real hooks, real worker jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitswarm.board import Board
from gitswarm.errors import GitswarmError
from gitswarm.roles import Swarm
from gitswarm.roles.worker import work_one
from gitswarm.task import new_task

from conftest import sh
from test_land import hub_ref, work_commit

GOAL = """---{test}
tasks:
  - id: t-aye
    title: Change f first
  - id: t-bee
    title: Change f too{run}
---
Two tasks on one file.
"""


class RacedSwarm(Swarm):
    """A swarm whose first agent run is followed by `race()`: another machine lands on main while
    this worker's task is being done, so its landing finds main moved."""

    race = None

    def run_agent(self, *args, **kw):
        result = super().run_agent(*args, **kw)
        race, self.race = self.race, None
        if race is not None:
            race()
        return result


def start(hub: Path, tmp_path: Path, before: str, run: str | None, test: bool = True) -> Path:
    """main holds f.txt (`before`) and goal g, whose task t-bee runs `run` (None: a model works
    it); with `test`, g has a test command (landings are rebased by the worker, never replayed)."""
    clone = tmp_path / "project"
    sh("git", "clone", "-q", str(hub), str(clone))
    (clone / "f.txt").write_text(before)
    (clone / "goals").mkdir()
    (clone / "goals" / "g.md").write_text(GOAL.format(run=f'\n    run: "{run}"' if run else "",
                                                           test='\ntest: "true"\nland: direct' if test else ""))
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-q", "-m", "start", cwd=clone)
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)
    return clone


def race_bee(hub: Path, tmp_path: Path, before: str, run: str | None, alice_writes: bytes,
             model=None, test: bool = True) -> tuple[list[str], str]:
    """t-bee is worked by w1 (its `run` command, or `model`) while alice lands t-aye (f.txt =
    `alice_writes`) on the same tip. The log lines, alice's commit."""
    start(hub, tmp_path, before, run, test)
    lines: list[str] = []
    landed = {}
    with Board(str(hub)) as board, Board(str(hub), cache=tmp_path / "alice-machine") as alice:
        board.add([new_task("Change f first", goal="g", task_id="t-aye", priority=1),
                   new_task("Change f too", goal="g", task_id="t-bee")])
        alice.refresh()
        assert alice.claim("alice").id == "t-aye"

        def alice_lands():
            from gitswarm import git

            tip = alice.fetch_branch("main")
            commit = git.write_commit(alice.mirror.repo, tip, {"f.txt": alice_writes},
                                      "Change f first\n\nGitswarm-Task: t-aye\nGitswarm-Worker: alice\n",
                                      ("alice", "alice@x"))
            landed["a"] = alice.land("t-aye", "alice", commit, "changed f").result["commit"]

        swarm = RacedSwarm(board, tmp_path / "work", log=lines.append,
                           **({"model_factory": lambda role: model} if model else {}))
        swarm.race = alice_lands
        assert work_one(swarm, "w1")
    return lines, landed["a"]


def task_yaml(hub: Path, task_id: str) -> dict:
    import yaml

    return yaml.safe_load(sh("git", "show", f"tasks:tasks/{task_id[2:4]}/{task_id}.yaml", cwd=hub).stdout)


def trailers(hub: Path, commit: str) -> list[str]:
    return sh("git", "log", "-1", "--format=%(trailers:key=Gitswarm-Task,valueonly,separator=%x20)", commit,
              cwd=hub).stdout.split()


def alice_landed(board: Board, path: str, text: str):
    """Tasks a (alice's) and b (bob's), both claimed; alice lands `text` at `path` on main.
    (task b, main before alice's landing, alice's commit)."""
    a, b = board.add([new_task("a", priority=1), new_task("b")])
    board.claim("alice")
    board.claim("bob")
    base = board.fetch_branch("main")
    first = work_commit(board, base, a.id, "alice", path, text)
    board.land(a.id, "alice", first, "a")
    return b, base, first


# ---------------------------------------------------------------- the worker's rebase


@pytest.mark.parametrize("test", [True, False], ids=["tested", "replayed"])
def test_a_rebase_never_drops_a_change_whose_patch_id_is_already_on_main(hub, tmp_path, test):
    """alice's change leaves no newline at the end; bob's adds one. git's patch-ids ignore
    whitespace, so a plain `git rebase` skipped bob's commit as already applied: the worker landed
    main's tip, t-bee was done with alice's commit and its newline was lost. Without a test command
    the board's replay conflicts first, and the worker's rebase ended the same way."""
    lines, alice = race_bee(hub, tmp_path, "a\n", "printf 'b\\n' > f.txt", b"b", test=test)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", lines
    mine = bee["result"]["commit"]
    assert mine != alice and trailers(hub, mine) == ["t-bee"]
    assert sh("git", "show", "main:f.txt", cwd=hub).stdout == "b\n"  # bob's change, on top of alice's
    assert sh("git", "rev-parse", f"{mine}~1", cwd=hub).stdout.strip() == alice


def test_a_change_already_on_main_lands_as_the_tasks_own_commit(hub, tmp_path):
    """Both tasks make the same change: bob's commit becomes empty on alice's. It is kept (its
    trailers say the task was done), never replaced by alice's commit."""
    lines, alice = race_bee(hub, tmp_path, "a\n", "printf 'b\\n' > f.txt", b"b\n")
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", lines
    mine = bee["result"]["commit"]
    assert mine != alice and trailers(hub, mine) == ["t-bee"]
    assert hub_ref(hub, "refs/heads/main") == mine
    assert sh("git", "rev-parse", f"{mine}^{{tree}}", cwd=hub).stdout == \
        sh("git", "rev-parse", f"{alice}^{{tree}}", cwd=hub).stdout


def test_a_redo_that_changes_nothing_completes_the_task(hub, tmp_path):
    """bob's command conflicts with alice's change; redone on her tip it changes nothing: done,
    "nothing to change", as a first run that changes nothing would be."""
    lines, alice = race_bee(hub, tmp_path, "x = 1\n", "sed -i s/1/3/ f.txt", b"x = 2\n")
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", (bee, lines)
    assert "commit" not in bee["result"] and "nothing to change" in bee["result"]["summary"]
    assert hub_ref(hub, "refs/heads/main") == alice
    assert any("redoing t-bee" in line for line in lines), lines


def test_a_conflict_resolved_to_mains_side_redoes_the_task(hub, tmp_path):
    """A model worker resolves the rebase's conflict by keeping main's side: `git rebase --continue`
    then drops its commit and leaves main's tip. The worker must not land that tip as its work:
    it sees the commit is not its own and redoes the task on the new main."""
    from gitswarm.agents import Reply, ScriptedModel

    def write(text):
        return [Reply.calling("write_file", {"path": "f.txt", "content": text}), Reply.calling("finish", {"summary": "f"})]
    model = ScriptedModel(write("b\n") + write("c\n") + write("b\n"))  # work, resolve (main's side), redo
    lines, alice = race_bee(hub, tmp_path, "a\n", None, b"c\n", model=model)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "done", (bee, lines)
    mine = bee["result"]["commit"]
    assert mine != alice and trailers(hub, mine) == ["t-bee"]
    assert sh("git", "show", "main:f.txt", cwd=hub).stdout == "b\n"
    assert any("has no commit of its own left" in line for line in lines), lines
    assert not model.replies


def test_a_redo_whose_model_is_down_hands_the_task_back(hub, tmp_path, monkeypatch):
    """The redo is a run like the first: a model that stays down hands the task back, not failed."""
    from gitswarm.agents import ModelUnavailable, Reply, ScriptedModel
    from gitswarm.roles import worker

    monkeypatch.setattr(worker, "UNAVAILABLE_PAUSE", 0.0)
    model = ScriptedModel([Reply.calling("write_file", {"path": "f.txt", "content": "b\n"}),
                           Reply.calling("finish", {"summary": "f"}),
                           Reply.calling("write_file", {"path": "f.txt", "content": "c\n"}),  # main's side
                           Reply.calling("finish", {"summary": "resolved"}),
                           ModelUnavailable("endpoint down after 6 attempts")])
    lines, alice = race_bee(hub, tmp_path, "a\n", None, b"c\n", model=model)
    bee = task_yaml(hub, "t-bee")
    assert bee["status"] == "open" and bee["result"] is None, (bee, lines)
    assert hub_ref(hub, "refs/heads/main") == alice


# ---------------------------------------------------------------- the board's replay


def test_a_replay_never_completes_a_task_with_commits_already_on_main(hub):
    """Landing a commit that is already on main (a rebase that dropped the work leaves the worker
    at main's old tip): the replay has nothing of the task's own to put on the moved tip and must
    not complete the task with the tip."""
    with Board(str(hub)) as board:
        a, b, c = board.add([new_task("a", priority=2), new_task("b", priority=1), new_task("c")])
        for who in ("alice", "bob", "carol"):
            board.claim(who)
        base = board.fetch_branch("main")
        first = board.land(a.id, "alice", work_commit(board, base, a.id, "alice", "a.txt", "a"), "a")
        board.land(c.id, "carol", work_commit(board, first.result["commit"], c.id, "carol", "c.txt", "c"), "c")
        tip = hub_ref(hub, "refs/heads/main")
        with pytest.raises(GitswarmError, match="is already on main"):
            board.land(b.id, "bob", first.result["commit"], "b", replay=True)
        assert board.get(b.id).status == "claimed"
    assert hub_ref(hub, "refs/heads/main") == tip


def test_a_replayed_commit_whose_change_is_on_the_tip_keeps_its_message(hub):
    """Regression guard: a commit whose change main already has is replayed as a commit of its own
    (an empty one), with its message and trailers, never skipped."""
    with Board(str(hub)) as board:
        b, base, first = alice_landed(board, "same.txt", "same")
        twin = work_commit(board, base, b.id, "bob", "same.txt", "same")
        done = board.land(b.id, "bob", twin, "b", replay=True)
    landed = done.result["commit"]
    assert landed not in (first, twin) and hub_ref(hub, "refs/heads/main") == landed
    assert sh("git", "log", "-1", "--format=%B", landed, cwd=hub).stdout == \
        sh("git", "log", "-1", "--format=%B", twin, cwd=board.mirror.path).stdout


# ---------------------------------------------------------------- the hub's guard


def test_the_hub_refuses_a_completion_with_a_commit_of_another_task(hub):
    with Board(str(hub)) as board:
        b, _, first = alice_landed(board, "a.txt", "a")
        with pytest.raises(GitswarmError, match=f"does not name {b.id}"):
            board.complete(b.id, "bob", "done, says bob", commit=first)
        assert board.get(b.id).status == "claimed"


def test_the_hub_refuses_a_completion_with_a_commit_of_no_task(hub):
    """Pushed with the completion, a commit without a Gitswarm-Task trailer is no task's work."""
    from gitswarm import git

    with Board(str(hub)) as board:
        b, = board.add([new_task("b")])
        board.claim("bob")
        plain = git.write_commit(board.mirror.repo, board.fetch_branch("main"), {"b.txt": b"b"},
                                 "plain work\n", ("bob", "bob@x"))
        with pytest.raises(GitswarmError, match=f"does not name {b.id}"):
            board.land(b.id, "bob", plain, "b")
        assert board.get(b.id).status == "claimed"
    assert hub_ref(hub, "refs/heads/main") is None
