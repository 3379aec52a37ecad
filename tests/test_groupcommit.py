"""The group commit is a part of its own: given a mirror, a view of the board and a lock (no
Board), it pushes requests to a real hub and moves the view on; a Board composes the two."""

from __future__ import annotations

import threading

from gitswarm.gitmirror import Mirror
from gitswarm.board import Board
from gitswarm.boardview import BoardView
from gitswarm.groupcommit import GroupCommit, Outcome
from gitswarm.task import new_task


def test_a_group_commit_pushes_with_only_its_mirror_view_and_lock(hub, tmp_path):
    mirror = Mirror(str(hub), tmp_path / "mirror")
    try:
        view = BoardView(mirror)
        commits = GroupCommit(mirror, view, threading.Lock())
        task = new_task("one")
        assert commits.submit(lambda state: Outcome("add", [task], result=task)) == task
        assert view.tasks[task.id] == task and view.tip == mirror.fetch("tasks")  # the view moved on
        assert (commits.pushes, commits.rejected_pushes) == (1, 0)
        assert commits.submit(lambda state: None) is None  # nothing to change: no push
        assert commits.pushes == 1
    finally:
        mirror.close()
    with Board(str(hub), cache=tmp_path / "board") as board:  # what it pushed is the hub's
        board.refresh()
        assert board.get(task.id).title == "one"
        assert board.tip == board.view.tip and board.pushes == board.commits.pushes == 0
