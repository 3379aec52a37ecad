"""A status's facts live in one table (gitswarm/statuses.py). Everything that says them again is
checked against it here: the JSON Schema of a task file, docs/board.md, the board's README that
`gitswarm init` commits (tasks/BOARD.md), the rules, and what `gitswarm status` lists. A status
added to the table but not to one of these fails here, naming what to add. Pure: no git."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gitswarm import rules
from gitswarm import task as T
from gitswarm.statuses import BY_NAME, ENDED, FINAL, SHOWN, STATUSES, TABLE, TRANSITIONS
from gitswarm.statusview import HEADER, Retries, format_status

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tasks" / "task.schema.json").read_text(encoding="utf-8"))
BOARD_DOC = (ROOT / "docs" / "board.md").read_text(encoding="utf-8")
BOARD_README = (ROOT / "tasks" / "BOARD.md").read_text(encoding="utf-8")
AT = "2026-01-07T09:00:00Z"


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped, backquotes dropped) of the first Markdown table after `heading`."""
    rest = text[text.index(heading):]
    rows: list[list[str]] = []
    for line in rest.splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("`", "") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def moves() -> set[tuple[str, str, str]]:
    return {(s.name, to, action) for s in TABLE for action, to in s.moves}


# ---------------------------------------------------------------- the table itself

def test_the_table_is_consistent_and_the_rules_use_it():
    assert len(set(STATUSES)) == len(STATUSES) and sorted(SHOWN) == sorted(STATUSES)
    assert sorted(s.shown for s in TABLE) == list(range(len(TABLE)))  # each a place of its own
    for s in TABLE:
        for action, to in s.moves:
            assert action in rules.ACTIONS, f"{s.name}: action {action} is not in rules.ACTIONS"
            assert to in BY_NAME and to != s.name, f"{s.name} -> {to}"
        assert not (s.final and not s.ended), f"{s.name}: a status nothing leads out of has ended"
        assert s.result is not False or not s.needs, f"{s.name}: needs keys of a result it may not have"
    assert {(a, b) for a, b, _ in moves()} == set(TRANSITIONS) and rules.TRANSITIONS is TRANSITIONS
    assert set(T.STATUSES) == set(STATUSES) and T.ENDED == ENDED
    reached = {to for s in TABLE for _, to in s.moves} | {"open"}  # a task starts open
    assert reached == set(STATUSES), "every status can be reached"
    assert set(FINAL) == {"done", "dead", "cancelled"}


def test_the_model_accepts_each_status_with_the_result_the_table_says():
    for s in TABLE:
        claim = T.Claim(worker="w", token=1, at=AT) if s.name == "claimed" else None
        result = {"worker": "w", "at": AT, **{k: "0" * 40 if k == "commit" else "x" for k in s.needs}}
        task = T.Task(id="t-aa11", title="a", status=s.name, attempts=1, claim=claim, created=AT,
                      result=result if s.result is not False else None)
        assert T.parse(T.dump(task), "t.yaml") == task
        if s.result is None:  # optional: none is fine too
            assert T.parse(T.dump(task.replace(result=None)), "t.yaml").result is None


# ---------------------------------------------------------------- the schema

def schema_result(status: str) -> tuple[bool | None, tuple[str, ...]]:
    """(result required True / forbidden False / optional None, the keys it needs) as the schema's
    conditional rules say for a status."""
    said: tuple[bool | None, tuple[str, ...]] = (None, ())
    for rule in SCHEMA["allOf"]:
        cond = rule["if"]["properties"]["status"]
        if status not in ([cond["const"]] if "const" in cond else cond["enum"]):
            continue
        result = rule["then"]["properties"].get("result")
        if result is None:
            continue
        if result.get("type") == "null":
            said = (False, ())
        elif result.get("type") == "object":
            said = (True, tuple(result["required"]))
        else:  # null or an object
            (obj,) = [r for r in result["anyOf"] if r.get("type") == "object"]
            said = (None, tuple(obj["required"]))
    return said


def test_the_schema_lists_the_statuses_and_their_results_as_the_table():
    assert SCHEMA["properties"]["status"]["enum"] == list(STATUSES), "add the status to the schema's enum"
    for s in TABLE:
        assert schema_result(s.name) == (s.result, s.needs), f"{s.name}: the schema's result rule differs"
    ended = SCHEMA["properties"]["result"]["description"]
    assert re.search(r"\(([a-z, ]+)\)", ended).group(1).split(", ") == list(ENDED)  # type: ignore[union-attr]


# ---------------------------------------------------------------- the docs

def test_docs_board_md_says_each_status_and_move_as_the_table():
    fields = {row[0]: row for row in table_after(BOARD_DOC, "## A task file")}
    assert fields["status"][1].split(" \\| ") == list(STATUSES), "docs/board.md: the status field's values"
    rows = table_after(BOARD_DOC, "### Status and the fields it ties")
    assert [(r[0], r[-1]) for r in rows] == [(s.name, s.meaning.replace("`", "")) for s in TABLE], \
        "docs/board.md: a row per status, in the table's order, saying its meaning"
    rows = table_after(BOARD_DOC, "### Transitions")
    assert {(r[0], r[1], r[2]) for r in rows} == moves() and len(rows) == len(moves()), \
        "docs/board.md: a row per (from, to, action)"
    for frm, to, action, who, _ in rows:
        if action in rules.HOLDER_ACTIONS:
            assert who.startswith("the holder"), (action, who)
        elif action in rules.TRAIN_ACTIONS:
            assert who == "the train's holder", (action, who)
        else:
            assert "holder" not in who.replace("the holder's", ""), (action, who)
    final = re.search(r"((?:`\w+`(?:, | and ))+`\w+`) are final", " ".join(BOARD_DOC.split()))
    assert final and re.findall(r"`(\w+)`", final.group(1)) == list(FINAL)


def test_the_boards_readme_says_each_status_and_move_as_the_table():
    """tasks/BOARD.md is committed onto every new hub as the board's README.md."""
    flat = " ".join(BOARD_README.split())
    named = re.search(r"A task is one of: ([a-z, ]+);", flat)
    assert named and named.group(1).split(", ") == list(STATUSES)
    rows = table_after(BOARD_README, "| from | to |")
    table = [(r[0], r[1], r[2]) for r in rows]
    assert set(table) == moves() and len(table) == len(moves()), "tasks/BOARD.md: a row per (from, to, action)"
    for _, _, action, who in rows:
        if action in rules.HOLDER_ACTIONS:
            assert who.startswith("the holder,") or who == "the holder", (action, who)
        elif action in rules.TRAIN_ACTIONS:
            assert who == "the holder of refs/gitswarm/train", (action, who)
    assert f"{', '.join(FINAL[:-1])} and {FINAL[-1]} are final" in flat


# ---------------------------------------------------------------- `gitswarm status`

def test_status_lists_every_status_in_the_tables_order():
    """One task in each status: each has its group, in the table's `shown` order (a status the
    table has is never left out), and the counts line names each."""
    tasks = []
    for i, s in enumerate(TABLE):
        claim = T.Claim(worker="w", token=1, at=AT) if s.name == "claimed" else None
        result = {"worker": "w", "at": AT, **{k: "0" * 40 if k == "commit" else "x" for k in s.needs}}
        tasks.append(T.Task(id=f"t-s{i}", title=s.name, status=s.name, attempts=1, claim=claim, created=AT,
                            result=result if s.result is not False else None))
    text = format_status(tasks, set(), Retries(), now=T.timestamp(AT))
    assert text.count(HEADER) == len(TABLE)
    groups = re.findall(r"^([A-Z]+) \(1\)$", text, re.M)
    assert groups == [name.upper() for name in SHOWN]
    assert text.splitlines()[0] == "  ".join(f"{name} 1" for name in SHOWN)
