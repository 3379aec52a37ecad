"""The one YAML loader (gitswarm.yamlfile) and the one validator toolkit (gitswarm.validate): the
error class is the caller's, whatever the input; each check says the field, the problem and the fix."""

from __future__ import annotations

import pytest

from gitswarm.errors import FileInvalid, TaskInvalid
from gitswarm.validate import Collect, Fields
from gitswarm.yamlfile import dump_yaml, load_yaml


def board_fail(field, problem, hint=None):
    return TaskInvalid("f.yaml", field, problem, hint)


@pytest.mark.parametrize("data, field, words", [
    (b"a: caf\xe9\n", None, "not UTF-8 (invalid continuation byte at byte 6)"),
    (b"a: [\n", None, "not valid YAML"),
    (b"a: !!python/object/apply:os.system [id]\n", "a", "YAML tags are not allowed"),
    (b"a: &x 1\nb: *x\n", "a", "YAML anchors and aliases are not allowed"),
    (b"a: {b: [1, 2]}\na: 2\n", "a", "given twice"),
    (b"a: {b: [1, {c: 1, c: 2}]}\n", "a.b[1].c", "given twice"),
    (b"? [a]\n: 1\n", None, "a mapping key must be plain text"),
    (b"a: 2026-02-30\n", None, "a value cannot be read (day is out of range for month)"),
    (b"a: " + b"7" * 5000 + b"\n", None, "a value cannot be read"),
    (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "a" + "[0]" * 31, "nests mappings and lists over 32 deep"),
    (b"#" * 70_000, None, "file is 70000 bytes; the limit is 65536"),
])
def test_load_yaml_raises_only_the_callers_error(data: bytes, field: str | None, words: str):
    with pytest.raises(TaskInvalid) as raised:
        load_yaml(data, "f.yaml", board_fail)
    assert raised.value.field == field and words in raised.value.problem, raised.value
    if data.isascii():
        with pytest.raises(FileInvalid) as raised:  # text as well as bytes; FileInvalid by default
            load_yaml(data.decode(), "f.yaml")
        assert type(raised.value) is FileInvalid and words in raised.value.problem


def test_dump_yaml_is_read_back_by_load_yaml():
    doc = {"title": "Café ünïcode", "list": [1, "two"], "none": None, "z": 1, "a": 2}
    text = dump_yaml(doc)
    assert load_yaml(text, "f.yaml") == doc and text.index(b"z:") < text.index(b"a:")


v = Fields(board_fail)


def short(where: str, value: object) -> str:
    return v.text(where, value, 10)


@pytest.mark.parametrize("check, field, problem, hint", [
    (lambda: v.text("t", 5, 10), "t", "must be text, not int", "quote it"),
    (lambda: v.text("t", " ", 10, required=True), "t", "must not be empty", "give it some text"),
    (lambda: v.text("t", "a\rb", 10, single_line=True), "t", "must be a single line", "description"),
    (lambda: v.text("t", "a\u202eb", 10), "t", "control or invisible character (U+202E)", "remove it"),
    (lambda: v.command("run", 7), "run", "must be a shell command, not int", "quote it: run: 'make test'"),
    (lambda: v.command("run", "  "), "run", "must not be empty", "as text"),
    (lambda: v.choice("kind", "wrok", ("work", "plan")), "kind", "'wrok' is not one of: work, plan", "work, plan"),
    (lambda: v.choice("b", "x", ("a",), "a backend"), "b", "'x' is not a backend", "write one of: a"),
    (lambda: v.integer("n", True, 1, 5), "n", "must be a whole number, not True", "from 1 to 5"),
    (lambda: v.integer("n", 9, 1, 5), "n", "9 is out of range", "from 1 to 5"),
    (lambda: v.number("x", float("nan"), 0, 1), "x", "nan is out of range", "from 0 to 1"),
    (lambda: v.duration("d", "10 minutes"), "d", "is not a duration", "30s, 10m"),
    (lambda: v.duration("d", "8d"), "d", "'8d' is out of range", "from 1s to 7d"),
    (lambda: v.flag("p", "yes"), "p", "must be true or false, not 'yes'", None),
    (lambda: v.list_of("l", "a", short, 3, "names"), "l", "must be a list of names, not str", None),
    (lambda: v.list_of("l", ["a"] * 4, short, 3, "names"), "l", "lists 4 names; the limit is 3", None),
    (lambda: v.list_of("l", ["a", "b", "a"], short, 3, "names"), "l[2]", "'a' is listed twice", "keep one"),
    (lambda: v.known_keys("w", {"modle": 1}, ("model", "max_steps")), "w.modle", "unknown field",
     "did you mean 'model'? the fields are: model, max_steps"),
])
def test_each_check_names_the_field_the_problem_and_the_fix(check, field, problem, hint):
    with pytest.raises(TaskInvalid) as raised:
        check()
    e = raised.value
    assert e.field == field and problem in e.problem, e
    assert (e.hint is None) if hint is None else (hint in e.hint), e


def test_checks_return_the_value_normalized():
    kinds = ("work", "plan")
    assert v.choice("kind", "".join(["pl", "an"]), kinds) is kinds[1]  # the constant, not a copy per file
    assert v.duration("d", "1h30m") == 5400.0 and v.command("run", None) is None
    assert v.list_of("l", ["a", "b"], short, 3, "names") == ("a", "b")


def test_collect_keeps_every_problem_or_raises_the_first():
    errors: list[FileInvalid] = []
    collect = Collect(errors)
    assert collect(lambda: v.integer("a", "x", 1, 2), 1) == 1
    assert collect(lambda: v.integer("b", 2, 1, 2), 1) == 2
    assert [e.field for e in errors] == ["a"]
    with pytest.raises(TaskInvalid):
        Collect()(lambda: v.integer("a", "x", 1, 2), 1)
