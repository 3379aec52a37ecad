"""A goal record (`goals/<name>.yaml` on the board) that breaks the rules, as real bytes: whatever
is wrong, record.parse raises TaskInvalid naming the file (and the field where there is one), never
UnicodeDecodeError, a yaml error or a ValueError; and one such record on a board does not stop a
refresh (the board lists it among its problems and goes on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitswarm import record
from gitswarm import task as T
from gitswarm.board import Board
from gitswarm.errors import TaskInvalid

from test_attacks_records import write_unguarded

PATH = "goals/g.yaml"
GOOD = record.dump(record.new_record("g", "a" * 40).replace(
    verdicts=(record.Verdict(1, "continue", "more to do", "2026-11-25T08:30:00Z", 10, 0.5),)))


def _without_verdicts() -> bytes:
    head, _, rest = GOOD.partition(b"verdicts:\n")
    return head + b"verdicts: X\nupdated: " + rest.partition(b"updated: ")[2]


VERDICTS = _without_verdicts()  # GOOD with `verdicts: X`


def edit(old: bytes, new: bytes) -> bytes:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


FILES = [  # (what, bytes, field or None, words in the message)
    ("not UTF-8", GOOD + b"# caf\xe9\n", None, "not UTF-8"),
    ("a python tag", edit(b"status: active", b"status: !!python/object/apply:os.system [id]"), "status",
     "YAML tags are not allowed"),
    ("an anchor", edit(b"status: active", b"status: &s active"), "status", "YAML anchors and aliases are not allowed"),
    ("an alias", edit(b"reason: null", b"reason: *s"), "reason", "YAML anchors and aliases are not allowed"),
    ("a billion laughs", edit(b"reason: null", b"reason: *s").replace(b"name: g\n", b"name: g\nx: &s [a, a]\n"),
     "x", "YAML anchors and aliases are not allowed"),
    ("over 64 KB", GOOD + b"#" + b"x" * T.MAX_FILE_BYTES + b"\n", None, "bytes; the limit is 65536"),
    ("not YAML", b"name: [g\n", None, "not valid YAML"),
    ("a date that does not exist, unquoted", edit(b"updated: ", b"updated: 2026-02-30 #"), None,
     "a value cannot be read"),
    ("an integer of 5,000 digits", edit(b"tokens: 0", b"tokens: " + b"9" * 5000), None, "a value cannot be read"),
    ("a key given twice", GOOD + b"cycle: 2\n", "cycle", "given twice"),
    ("deep nesting", edit(b"reason: null", b"reason: " + b"[" * 100 + b"]" * 100), "reason" + "[0]" * 31,
     "nests mappings and lists over 32 deep"),
    ("a list", b"- name: g\n", None, "a goal record holds exactly"),
    ("an unknown field", GOOD + b"colour: red\n", None, "a goal record holds exactly"),
    ("name: a number", edit(b"name: g", b"name: 7"), "name", "7 is not valid"),
    ("name: another goal's", edit(b"name: g", b"name: h"), "name", "h does not match the file name"),
    ("status: a list", edit(b"status: active", b"status: [active]"), "status", "['active'] is not one of"),
    ("status: unknown", edit(b"status: active", b"status: paused"), "status", "'paused' is not one of"),
    ("cycle: text", edit(b"cycle: 1", b"cycle: one"), "cycle", "must be a whole number"),
    ("cycle: 0", edit(b"cycle: 1", b"cycle: 0"), "cycle", "0 is out of range"),
    ("source: not a commit", edit(b"source: " + b"a" * 40, b"source: main"), "source", "'main' is not valid"),
    ("reason: a mapping", edit(b"reason: null", b"reason: {a: 1}"), "reason", "must be text, not dict"),
    ("reason: a control character", edit(b"reason: null", b'reason: "a\\x1bb"'), "reason", "control"),
    ("tokens: negative", edit(b"tokens: 0", b"tokens: -1"), "tokens", "-1 is out of range"),
    ("tokens: a float", edit(b"tokens: 0", b"tokens: 1.5"), "tokens", "must be a whole number"),
    ("budget: true", edit(b"budget: null", b"budget: true"), "budget", "must be a whole number"),
    ("verdicts: a mapping", VERDICTS.replace(b"verdicts: X", b"verdicts: {}"), "verdicts", "must be a list"),
    ("verdicts[0]: text", VERDICTS.replace(b"verdicts: X", b"verdicts: [late]"), "verdicts[0]",
     "holds cycle, decision, reasons, at and tokens"),
    ("verdicts[0].decision", edit(b"decision: continue", b"decision: maybe"), "verdicts[0].decision",
     "'maybe' is not one of"),
    ("verdicts[0].at", edit(b"at: '2026-11-25T08:30:00Z'", b"at: yesterday"), "verdicts[0].at", "is not valid"),
    ("verdicts[0].cost: text", edit(b"cost: 0.5", b"cost: cheap"), "verdicts[0].cost", "must be a number"),
    ("updated: February 30", edit(b"updated: '", b"updated: '2026-02-30T00:00:00Z' #'"), "updated",
     "is not a real date"),
    ("cost: NaN", GOOD + b"cost: .nan\n", "cost", "nan is out of range"),
]


@pytest.mark.parametrize("what, data, field, words", FILES, ids=[f[0] for f in FILES])
def test_a_bad_goal_record_is_task_invalid_naming_the_file_and_field(what: str, data: bytes, field: str | None,
                                                                    words: str):
    with pytest.raises(TaskInvalid) as raised:
        record.parse(data, PATH)
    e = raised.value
    assert (e.path, e.field) == (PATH, field), str(e)
    assert words in e.problem, str(e)


def test_the_good_record_parses():
    rec = record.parse(GOOD, PATH)
    assert rec.name == "g" and rec.verdicts[0].cost == 0.5
    assert record.parse(record.dump(rec), PATH) == rec


def test_one_bad_goal_record_does_not_stop_a_board_refresh(hub: Path):
    """Bad records pushed past the guard (update-ref, no hook): the board still loads its tasks and
    good records, and names each bad file among its problems."""
    task = T.new_task("Still here")
    good = record.dump(record.new_record("good", None))
    files = {task.path: T.dump(task), "goals/good.yaml": good}
    bad = {f"goals/bad{i}.yaml": data.replace(b"name: g\n", f"name: bad{i}\n".encode())
           for i, (_, data, _, _) in enumerate(FILES)}
    broken = T.new_task("Created on February 30")  # unquoted: safe_load's own ValueError, before
    bad[broken.path] = T.dump(broken).replace(f"created: '{broken.created}'".encode(), b"created: 2026-02-30")
    write_unguarded(hub, {**files, **bad}, "goal: bad records")
    with Board(str(hub)) as board:
        board.refresh()
        assert [t.id for t in board.tasks()] == [task.id]
        assert set(board.records()) == {"good"}
        assert len(board.problems) == len(bad), board.problems
        assert sorted(p.split(":")[0] for p in board.problems) == sorted(bad), board.problems
        assert any("a value cannot be read (day is out of range" in p for p in board.problems), board.problems
