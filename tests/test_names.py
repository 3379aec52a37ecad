"""The names of a hub's refs and the name rules (gitswarm/names.py): pure, no repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gitswarm import names
from gitswarm.errors import RuleViolation, TaskInvalid
from gitswarm.git import ZERO

TASK = "t-4f2a91bc"
SHA = "1" * 40


def test_every_ref_gitswarm_pushes_is_allowed_and_reads_back() -> None:
    assert names.land_ref(TASK, 3) == "refs/gitswarm/land/t-4f2a91bc/3"
    assert names.runs_ref(TASK, 2) == "refs/gitswarm/runs/t-4f2a91bc/2"
    assert names.attempts_ref(TASK, 16) == "refs/gitswarm/attempts/t-4f2a91bc/16"
    assert names.heartbeat_ref("w-1") == "refs/gitswarm/heartbeats/w-1"
    for ref in (names.MAIN, names.BOARD, names.TRAIN, names.land_ref(TASK, 3), names.runs_ref(TASK, 2),
                names.attempts_ref(TASK, 16), names.heartbeat_ref("w-1")):
        assert names.allowed(ref), ref
    assert names.parse_land_ref(names.land_ref(TASK, 3)) == (TASK, 3)
    assert names.parse_runs_ref(names.runs_ref(TASK, 2)) == (TASK, 2)
    assert names.parse_attempts_ref(names.attempts_ref(TASK, 16)) == (TASK, 16)
    assert names.heartbeat_worker(names.heartbeat_ref("w-1")) == "w-1"
    assert names.branch_of(names.branch_ref("feature")) == "feature"
    assert names.branch_of("refs/tags/v1") == "refs/tags/v1"
    assert names.kept_ref(names.MAIN_BRANCH) == "refs/gitswarm/hub/main"


@pytest.mark.parametrize("ref", [
    "refs/heads/feature", "refs/tags/v1", "refs/notes/x", "refs/gitswarm/other", "refs/gitswarm/train/x",
    names.ARCHIVE,  # the hub writes it itself
    names.ATTEMPTS_ARCHIVE,  # the same
    "refs/gitswarm/land/t-aa", "refs/gitswarm/land/t-aa/0", "refs/gitswarm/land/t-aa/01", "refs/gitswarm/land/T-AA/1",
    "refs/gitswarm/land/t-aa/1/x", "refs/gitswarm/runs/t-aa/12345678", "refs/gitswarm/attempts/t-aa/17",
    "refs/gitswarm/heartbeats/", "refs/gitswarm/heartbeats/a/b", "refs/gitswarm/heartbeats/-w",
    "refs/gitswarm/heartbeats/.w", "refs/gitswarm/heartbeats/wé", "refs/gitswarm/heartbeats/" + "w" * 65,
])
def test_any_other_ref_is_refused(ref: str) -> None:
    assert not names.allowed(ref)


@pytest.mark.parametrize("worker", ["w", "W.x_y@z-1", "a" * 64, "host-w12",
                                    "-w", "_w", "@w", "wé", "a" * 65, "a b", ""])
def test_a_heartbeat_carries_exactly_the_names_a_claim_may_hold(worker: str) -> None:
    """One rule for a worker's name: the board's claim.worker and a heartbeat ref's name."""
    from gitswarm import task as T

    claim = T.dump(T.Task(id=TASK, title="x", status="claimed", attempts=1, created="2026-11-25T08:00:00Z",
                          claim=T.Claim(worker=worker, token=1, at="2026-11-25T08:30:00Z", lease=900)))
    try:
        T.parse(claim, T.task_path(TASK))
        holds = True
    except TaskInvalid:
        holds = False
    assert (names.heartbeat_worker(names.heartbeat_ref(worker)) == worker) is holds


def test_created_once_refuses_a_move_and_a_delete_with_one_message() -> None:
    names.created_once("refs/gitswarm/land/t-aa/1", ZERO, SHA, "a land ref", "hint")
    for old, new in ((SHA, "2" * 40), (SHA, ZERO)):
        with pytest.raises(RuleViolation) as caught:
            names.created_once("refs/gitswarm/land/t-aa/1", old, new, "a land ref", "the hint")
        assert caught.value.path == "refs/gitswarm/land/t-aa/1" and caught.value.hint == "the hint"
        assert caught.value.rule == "a land ref is created once and never moved or deleted by a push"


def test_every_ref_name_of_the_package_is_in_names() -> None:
    """The names of refs are written once, in gitswarm/names.py: no other module's code holds a
    string (or an f-string's text) that is a ref's name (docstrings and sentences may name refs)."""
    package = Path(names.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "names.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        found += [f"{path.relative_to(package)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and re.match(r"(\+|[\w^~]*:)?refs/", node.value)]
    assert found == []
