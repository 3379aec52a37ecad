"""The JSON Schema of a task file (tasks/task.schema.json), the examples (tasks/examples/) and the
task model (gitswarm/task.py) must agree: every document one accepts the other accepts, every
document one rejects the other rejects, except for the few rules the schema cannot express, which
are listed here and in the schema's description. Also: the package ships the schema and examples.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from gitswarm import rules
from gitswarm import task as T
from gitswarm.errors import TaskInvalid
from gitswarm.install import resource_dir
from gitswarm.text import CONTROL_RE

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tasks"
SCHEMA = json.loads((SOURCE / "task.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
EXAMPLES = sorted((SOURCE / "examples").glob("*.yaml"))

ID, OTHER = "t-4f2a91bc", "t-7d3e0b96"
AT = "2026-11-25T09:02:11.904551Z"
SHA1 = "5e0c2b9d4f1a7e3c8b6d2a9f0e4c7b1a3d5f8e20"
DROP = object()  # in variant(): remove the field


def base(status: str = "open") -> dict[str, Any]:
    """A valid task document in each status."""
    doc: dict[str, Any] = {
        "id": ID, "title": "Tokenize CSS selectors", "description": "Write css/selectors.py.\n",
        "kind": "work", "goal": None, "parent": None, "depends_on": [], "priority": 0,
        "status": "open", "attempts": 0, "claim": None, "result": None, "created": "2026-11-25T08:30:00Z",
    }
    if status == "claimed":
        doc.update(status="claimed", attempts=1, claim={"worker": "alice", "token": 1, "at": AT, "lease": 900})
    elif status == "done":
        doc.update(status="done", attempts=1,
                   result={"worker": "alice", "at": AT, "commit": SHA1, "summary": "tokens done"})
    elif status in ("failed", "dead"):
        doc.update(status=status, attempts=1, result={"worker": "alice", "at": AT, "reason": "it broke"})
    elif status == "cancelled":
        doc.update(status="cancelled", result={"at": AT, "reason": "not needed"})
    elif status == "landing":
        doc.update(status="landing", attempts=1,
                   result={"worker": "alice", "at": AT, "commit": SHA1, "summary": "tokens done"})
    else:
        assert status == "open", status
    return doc


def variant(state: str = "open", /, **changes: Any) -> dict[str, Any]:
    """base(state) with top-level fields changed (DROP: removed)."""
    doc = base(state)
    for key, value in changes.items():
        if value is DROP:
            del doc[key]
        else:
            doc[key] = value
    return doc


def inner(state: str, key: str, /, **changes: Any) -> dict[str, Any]:
    """base(state) with its claim or result changed."""
    doc = base(state)
    sub = dict(doc[key])
    for k, value in changes.items():
        if value is DROP:
            del sub[k]
        else:
            sub[k] = value
    doc[key] = sub
    return doc


def schema_fields(doc: Any) -> set[str]:
    """The top-level fields the schema complains about ('<root>' for the document as a whole)."""
    fields: set[str] = set()
    for e in VALIDATOR.iter_errors(doc):
        if e.absolute_path:
            fields.add(str(e.absolute_path[0]))
        else:  # required / additionalProperties name the field in the message
            fields.update(re.findall(r"'([a-z_]+)'", e.message) or ["<root>"])
    return fields


def top(field: str | None) -> str | None:
    return None if field is None else re.split(r"[.\[]", field)[0]


def as_yaml(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode("utf-8")


# ---------------------------------------------------------------- the schema itself

def test_the_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_names_the_same_fields_and_values_as_task_py():
    assert SCHEMA["required"] == list(T.FIELDS)
    assert set(SCHEMA["properties"]) == set(T.FIELDS)
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["kind"]["enum"] == list(T.KINDS)
    assert SCHEMA["properties"]["status"]["enum"] == list(T.STATUSES)
    assert set(SCHEMA["$defs"]["result"]["properties"]) == set(T.RESULT_KEYS)
    assert SCHEMA["properties"]["title"]["maxLength"] == T._TITLE_MAX
    assert SCHEMA["$defs"]["text"]["maxLength"] == T._TEXT_MAX
    ended = set()  # the statuses whose result the schema requires: exactly task.py's ENDED
    for rule in SCHEMA["allOf"]:
        status = rule["if"]["properties"]["status"]
        if rule["then"]["properties"].get("result", {}).get("type") == "object":
            ended |= {status["const"]} if "const" in status else set(status["enum"])
    assert ended == set(T.ENDED) | {"landing"}  # and landing: the commit it hands to the queue


def test_the_schema_refuses_the_same_control_characters_as_task_py():
    schema_re = re.compile(SCHEMA["$defs"]["text"]["not"]["pattern"])
    astral = [0x1F600, 0xE0001, 0xE0041, 0x10FFFF]
    for code in [*range(0xD800), *range(0xE000, 0x10000), *astral]:
        c = chr(code)
        assert bool(schema_re.search(c)) == bool(CONTROL_RE.search(c)), f"U+{code:04X}"


# ---------------------------------------------------------------- the examples

def load_examples() -> dict[str, tuple[bytes, T.Task]]:
    return {p.name: (p.read_bytes(), T.parse(p.read_bytes(), f"tasks/examples/{p.name}")) for p in EXAMPLES}


def test_the_examples_cover_every_kind_of_task():
    tasks = [t for _, t in load_examples().values()]
    assert len(tasks) >= 6
    seen = {(t.kind, t.status) for t in tasks}
    assert {("work", "open"), ("plan", "open")} <= seen
    assert {"claimed", "done", "failed", "cancelled"} <= {t.status for t in tasks}
    assert any(t.kind == "plan" and t.status == "open" and t.depends_on and t.goal and t.parent
               for t in tasks)
    assert any(t.status == "done" and t.result and "commit" in t.result for t in tasks)


def test_the_examples_are_one_consistent_board():
    tasks = {t.id: t for _, t in load_examples().values()}
    for t in tasks.values():
        for ref in (*t.depends_on, *([t.parent] if t.parent else [])):
            assert ref in tasks, f"{t.id} names {ref}, which is not an example"
        if t.status == "claimed":
            assert t.claim and t.claim.token == t.attempts
        # each example is reachable: its first version is a valid new task
        first = t.replace(status="open", attempts=0, claim=None, result=None)
        rules.check_added(T.from_dict(first.to_dict(), t.path), t.path)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_is_valid_for_both_the_schema_and_task_py(path: Path):
    data = path.read_bytes()
    doc = yaml.safe_load(data)
    assert sorted(VALIDATOR.iter_errors(doc), key=str) == []
    task = T.parse(data, f"tasks/examples/{path.name}")
    assert re.fullmatch(r"t-[0-9a-f]{8}", task.id)
    assert path.name == f"{task.id}.yaml"
    assert T.id_from_path(task.path) == task.id


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_round_trips_through_dump(path: Path):
    data = path.read_bytes()
    task = T.parse(data, path.name)
    out = T.dump(task)
    assert T.parse(out, path.name) == task
    assert T.dump(T.parse(out, path.name)) == out  # dump is stable
    assert yaml.safe_load(out) == yaml.safe_load(data)  # the same data, the comments gone
    assert VALIDATOR.is_valid(yaml.safe_load(out))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_field_of_an_example_is_explained_by_a_comment(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*[a-z_]+:", line):
            before = [x for x in lines[:i] if x.strip()]
            assert before and before[-1].lstrip().startswith("#"), f"{path.name}:{i + 1}: {line}"


# ---------------------------------------------------------------- both accept, both reject

def p(name: str, doc: Any, field: str | None = None, **kw: Any) -> Any:
    return pytest.param(doc, field, id=name, **kw)


VALID = [
    *[p(f"status {s}", base(s)) for s in T.STATUSES],
    p("open again, saying why the last attempt ended",
      variant(result={"reason": "lease lapsed", "worker": "alice", "at": AT})),
    p("title of 200 characters", variant(title="x" * 200)),
    p("title with a tab and unicode", variant(title="Überschrift\t— ✓ 漢字")),
    p("title with spaces around", variant(title="  Tokenize  ")),
    p("description of 32768 characters", variant(description="x" * 32768)),
    p("description with lines and tabs", variant(description="one\n\ttwo\n\nthree")),
    p("empty description", variant(description="")),
    p("shortest id", variant(id="t-ab")),
    p("longest id", variant(id="t-" + "a" * 48)),
    p("id with dashes", variant(id="t-a-b--c")),
    p("plan kind", variant(kind="plan")),
    p("goal of 64 characters", variant(goal="g" * 64)),
    p("goal with . _ @ -", variant(goal="Ops.team_1@corp-x")),
    p("parent", variant(parent=OTHER)),
    p("parent also a dependency", variant(parent=OTHER, depends_on=[OTHER])),
    p("256 dependencies", variant(depends_on=[f"t-{i:08x}" for i in range(256)])),
    p("highest priority", variant(priority=1_000_000)),
    p("lowest priority", variant(priority=-1_000_000)),
    p("open after a release", variant(attempts=3)),
    p("most attempts", variant("claimed", attempts=1_000_000,
                               claim={"worker": "alice", "token": 1_000_000, "at": AT, "lease": 604800})),
    p("SHA-256 commit", inner("done", "result", commit="a" * 64)),
    p("done without commit, worker or time", variant("done", result={"summary": "ok"})),
    p("done with an empty summary", inner("done", "result", summary="")),
    p("failed with a summary too", inner("failed", "result", summary="half of it")),
    p("created without fraction", variant(created="2026-11-25T08:30:00Z")),
    p("created with one fraction digit", variant(created="2026-11-25T08:30:00.5Z")),
    p("created with six fraction digits", variant(created="2026-11-25T08:30:00.123456Z")),
]


@pytest.mark.parametrize("doc, field", VALID)
def test_both_accept(doc: Any, field: None):
    assert sorted(VALIDATOR.iter_errors(doc), key=str) == []
    task = T.from_dict(doc, "t.yaml")
    assert task.to_dict() == doc
    assert T.parse(as_yaml(doc), "t.yaml") == task
    assert T.parse(T.dump(task), "t.yaml") == task


CLAIM = {"worker": "alice", "token": 1, "at": AT, "lease": 900}

INVALID = [
    *[p(f"missing {f}", variant(**{f: DROP}), f) for f in T.FIELDS],
    p("unknown field", variant(assignee="bob"), "assignee"),
    p("a list, not a mapping", [base()]),
    p("a string, not a mapping", "id: t-4f2a91bc"),
    p("null, not a mapping", None),
    # id
    p("id in upper case", variant(id="t-4F2A91BC"), "id"),
    p("id without t-", variant(id="4f2a91bc"), "id"),
    p("id too short", variant(id="t-a"), "id"),
    p("id too long", variant(id="t-" + "a" * 49), "id"),
    p("id starting with a dash", variant(id="t--4f2a91b"), "id"),
    p("id ending with a dash", variant(id="t-4f2a91b-"), "id"),
    p("id with an underscore", variant(id="t-4f2a_91bc"), "id"),
    p("id with a trailing newline", variant(id=ID + "\n"), "id"),
    p("id not a string", variant(id=42), "id"),
    # title
    p("empty title", variant(title=""), "title"),
    p("blank title", variant(title=" \t "), "title"),
    p("multi-line title", variant(title="Tokenize\nCSS selectors"), "title"),
    p("title with a trailing newline", variant(title="Tokenize\n"), "title"),
    p("title with a carriage return", variant(title="Tokenize\rCSS"), "title"),
    p("title of 201 characters", variant(title="x" * 201), "title"),
    p("title with a control character", variant(title="Tokenize\x07"), "title"),
    p("title with NUL", variant(title="Tok\x00enize"), "title"),
    p("title with DEL", variant(title="Tok\x7fenize"), "title"),
    p("title with a zero-width space", variant(title="Tok\u200benize"), "title"),
    p("title with a bidi override", variant(title="Tok\u202eenize"), "title"),
    p("title with a line separator", variant(title="Tok\u2028enize"), "title"),
    p("title with a BOM", variant(title="\ufeffTokenize"), "title"),
    p("title a boolean (yes unquoted)", variant(title=True), "title"),
    p("title null", variant(title=None), "title"),
    # description
    p("description of 32769 characters", variant(description="x" * 32769), "description"),
    p("description with a control character", variant(description="a\x1bb"), "description"),
    p("description with a carriage return", variant(description="a\r\nb"), "description"),
    p("description null", variant(description=None), "description"),
    p("description a list", variant(description=["a"]), "description"),
    # kind, status
    p("unknown kind", variant(kind="epic"), "kind"),
    p("kind in upper case", variant(kind="Work"), "kind"),
    p("kind null", variant(kind=None), "kind"),
    p("unknown status", variant(status="closed"), "status"),
    p("status in upper case", variant(status="Open"), "status"),
    p("status null", variant(status=None), "status"),
    # goal, parent
    p("empty goal", variant(goal=""), "goal"),
    p("goal starting with a dash", variant(goal="-css"), "goal"),
    p("goal with a space", variant(goal="css engine"), "goal"),
    p("goal of 65 characters", variant(goal="g" * 65), "goal"),
    p("goal with a trailing newline", variant(goal="css\n"), "goal"),
    p("goal not a string", variant(goal=7), "goal"),
    p("parent not a task id", variant(parent="plan-1"), "parent"),
    p("parent not a string", variant(parent=5), "parent"),
    # depends_on
    p("depends_on a string", variant(depends_on=OTHER), "depends_on"),
    p("depends_on null", variant(depends_on=None), "depends_on"),
    p("depends_on a bad id", variant(depends_on=[OTHER, "T-1"]), "depends_on"),
    p("depends_on null item", variant(depends_on=[None]), "depends_on"),
    p("depends_on twice the same", variant(depends_on=[OTHER, OTHER]), "depends_on"),
    p("depends_on 257 tasks", variant(depends_on=[f"t-{i:08x}" for i in range(257)]), "depends_on"),
    # priority, attempts
    p("priority a boolean", variant(priority=True), "priority"),
    p("priority a fraction", variant(priority=1.5), "priority"),
    p("priority a string", variant(priority="1"), "priority"),
    p("priority too high", variant(priority=1_000_001), "priority"),
    p("priority too low", variant(priority=-1_000_001), "priority"),
    p("priority null", variant(priority=None), "priority"),
    p("attempts negative", variant(attempts=-1), "attempts"),
    p("attempts a boolean", variant(attempts=False), "attempts"),
    p("attempts too many", variant(attempts=1_000_001), "attempts"),
    # claim
    p("claimed without a claim", variant("claimed", claim=None), "claim"),
    p("open with a claim", variant(claim=CLAIM), "claim"),
    p("done with a claim", variant("done", claim=CLAIM), "claim"),
    p("claim without token", inner("claimed", "claim", token=DROP), "claim"),
    p("claim with an extra key", inner("claimed", "claim", until=AT), "claim"),
    p("claim token 0", variant("claimed", attempts=0, claim={**CLAIM, "token": 0}), "claim"),
    p("claim token a boolean", inner("claimed", "claim", token=True), "claim"),
    p("claim token a string", inner("claimed", "claim", token="1"), "claim"),
    p("claim worker with a space", inner("claimed", "claim", worker="al ice"), "claim"),
    p("claim worker empty", inner("claimed", "claim", worker=""), "claim"),
    p("claim at not a time", inner("claimed", "claim", at="yesterday"), "claim"),
    p("claim a string", variant("claimed", claim="alice"), "claim"),
    p("claim a list", variant("claimed", claim=["alice", 1, AT]), "claim"),
    # result
    p("open with a result but no reason", variant(result={"summary": "x"}), "result"),
    p("claimed with a result", variant("claimed", result={"summary": "x"}), "result"),
    p("done without a result", variant("done", result=None), "result"),
    p("done without a summary", inner("done", "result", summary=DROP), "result"),
    p("done with a reason, no summary", variant("done", result={"reason": "x"}), "result"),
    p("failed without a reason", inner("failed", "result", reason=DROP), "result"),
    p("dead without a reason", variant("dead", result={"summary": "x"}), "result"),
    p("cancelled without a result", variant("cancelled", result=None), "result"),
    p("cancelled without a reason", inner("cancelled", "result", reason=DROP), "result"),
    p("result with an unknown key", inner("done", "result", notes="x"), "result"),
    p("commit of 39 hex digits", inner("done", "result", commit=SHA1[:39]), "result"),
    p("commit of 41 hex digits", inner("done", "result", commit=SHA1 + "0"), "result"),
    p("commit of 63 hex digits", inner("done", "result", commit="a" * 63), "result"),
    p("commit in upper case", inner("done", "result", commit=SHA1.upper()), "result"),
    p("commit abbreviated", inner("done", "result", commit="5e0c2b9"), "result"),
    p("commit a number", inner("done", "result", commit=12345), "result"),
    p("result worker with a slash", inner("done", "result", worker="a/b"), "result"),
    p("result at without Z", inner("done", "result", at="2026-11-25T09:02:11"), "result"),
    p("summary not a string", inner("done", "result", summary=3), "result"),
    p("summary with a control character", inner("done", "result", summary="ok\x08"), "result"),
    p("reason of 32769 characters", inner("failed", "result", reason="x" * 32769), "result"),
    p("result a list", variant("done", result=["tokens done"]), "result"),
    p("result a string", variant("done", result="tokens done"), "result"),
    # created
    p("created with a space for T", variant(created="2026-11-25 08:30:00Z"), "created"),
    p("created with an offset", variant(created="2026-11-25T08:30:00+00:00"), "created"),
    p("created without Z", variant(created="2026-11-25T08:30:00"), "created"),
    p("created in lower case", variant(created="2026-11-25t08:30:00z"), "created"),
    p("created without seconds", variant(created="2026-11-25T08:30Z"), "created"),
    p("created with 7 fraction digits", variant(created="2026-11-25T08:30:00.1234567Z"), "created"),
    p("created a date", variant(created="2026-11-25"), "created"),
    p("created empty", variant(created=""), "created"),
    p("created with a trailing newline", variant(created="2026-11-25T08:30:00Z\n"), "created"),
    p("created a timestamp (unquoted in YAML)",
      variant(created=datetime(2026, 11, 25, 8, 30, tzinfo=timezone.utc)), "created"),
    p("created in non-ASCII digits", variant(created="٢٠٢٦-١١-٢٥T08:30:00Z"), "created"),
]


@pytest.mark.parametrize("doc, field", INVALID)
def test_both_reject(doc: Any, field: str | None):
    assert not VALIDATOR.is_valid(doc), "the schema accepts it"
    if field is not None:
        assert field in schema_fields(doc)
    with pytest.raises(TaskInvalid) as raised:
        T.from_dict(doc, "t.yaml")
    assert top(raised.value.field) == field
    with pytest.raises(TaskInvalid) as parsed:
        T.parse(as_yaml(doc), "t.yaml")
    assert parsed.value.field == raised.value.field


def test_every_rule_of_the_schema_is_exercised():
    """Each keyword that can reject a document fails for at least one INVALID case."""
    failing: set[tuple[str, ...]] = set()
    for param in INVALID:
        doc = param.values[0]
        for e in VALIDATOR.iter_errors(doc):
            for err in [e, *e.context]:
                failing.add(tuple(str(x) for x in err.absolute_schema_path))
    keywords = {path[-1] for path in failing}
    for keyword in ("required", "additionalProperties", "type", "pattern", "not", "maxLength",
                    "enum", "uniqueItems", "maxItems", "minimum", "maximum"):
        assert keyword in keywords, keyword
    for branch in ("then", "else"):
        assert any(branch in path for path in failing), branch


# ---------------------------------------------------------------- as YAML text

YAML_BOTH_REJECT = [
    ("unquoted timestamp", "created: '2026-11-25T08:30:00Z'", "created: 2026-11-25T08:30:00Z"),
    ("yes unquoted", "title: Tokenize CSS selectors", "title: yes"),
    ("a date for a title", "title: Tokenize CSS selectors", "title: 2026-11-25"),
    ("no for a goal", "goal: null", "goal: no"),
    ("a float priority", "priority: 0", "priority: 1.5"),
]


@pytest.mark.parametrize("old, new", [pytest.param(o, n, id=name) for name, o, n in YAML_BOTH_REJECT])
def test_yaml_that_both_reject(old: str, new: str):
    text = as_yaml(base()).decode()
    assert old in text
    data = text.replace(old, new).encode()
    assert not VALIDATOR.is_valid(yaml.safe_load(data))
    with pytest.raises(TaskInvalid):
        T.parse(data, "t.yaml")


# ---------------------------------------------------------------- what only task.py checks

SCHEMA_CANNOT = [
    p("claim token is not attempts", variant("claimed", attempts=2, claim=CLAIM), "claim.token"),
    p("depends on itself", variant(depends_on=[OTHER, ID]), "depends_on"),
    p("its own parent", variant(parent=ID), "parent"),
    p("an integral float (1.0 is an integer to JSON Schema)", variant(priority=1.0), "priority"),
]


@pytest.mark.parametrize("doc, field", SCHEMA_CANNOT)
def test_what_the_schema_cannot_express_task_py_rejects(doc: Any, field: str):
    assert VALIDATOR.is_valid(doc)
    with pytest.raises(TaskInvalid) as raised:
        T.from_dict(doc, "t.yaml")
    assert raised.value.field == field


def test_the_schema_documents_what_it_cannot_express():
    text = SCHEMA["description"]
    for words in ("claim.token equals attempts", "own id", "65536 bytes", "tags, anchors or aliases",
                  "1.0"):
        assert words in text, words


def _yaml_gaps() -> list[Any]:
    good = as_yaml(variant(description="x"))
    big = yaml.safe_dump(variant(description="é" * 32768), sort_keys=False, allow_unicode=True)
    assert len(big.encode()) > T.MAX_FILE_BYTES  # 32768 characters, but 65536 bytes of them
    gaps = [
        p("over 64 KB", big.encode()),
        p("a tag", good.replace(b"title: ", b"title: !!str ")),
        p("a local tag", good.replace(b"kind: work", b"kind: !task work")),
        p("an anchor", good.replace(b"depends_on: []", b"depends_on: &deps []")),
        p("an alias", good.replace(b"title: ", b"title: &t ").replace(b"description: x", b"description: *t")),
    ]
    assert all(gap.values[0] != good for gap in gaps)
    return gaps


@pytest.mark.parametrize("data, field", _yaml_gaps())
def test_parse_refuses_what_the_schema_never_sees(data: bytes, field: None):
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:  # a tag PyYAML does not know
        pass
    else:  # the data is valid: only the file (size, tags, anchors) is wrong
        assert sorted(VALIDATOR.iter_errors(doc), key=str) == []
    with pytest.raises(TaskInvalid) as raised:
        T.parse(data, "t.yaml")
    assert raised.value.field is None


@pytest.mark.parametrize("data", [b"id: [", b"\xfftitle: x\n", b"\x00"], ids=["not YAML", "not UTF-8", "NUL"])
def test_parse_refuses_a_file_that_is_not_yaml(data: bytes):
    with pytest.raises(TaskInvalid):
        T.parse(data, "t.yaml")


# ---------------------------------------------------------------- shipped in the package

def _shipped(folder: Path) -> dict[str, bytes]:
    names = ["task.schema.json", "BOARD.md", *(f"examples/{p.name}" for p in EXAMPLES)]
    return {name: (folder / name).read_bytes() for name in names}


def test_resource_dir_holds_the_schema_examples_and_readme():
    folder = resource_dir("gitswarm.schema", "tasks")
    assert _shipped(folder) == _shipped(SOURCE)
    assert sorted(p.name for p in (folder / "examples").glob("*.yaml")) == [p.name for p in EXAMPLES]


def _build(tmp_path: Path) -> Path:
    """Build the package the way an install does (setuptools build_py) into tmp_path/lib."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("gitswarm", "hooks", "tasks", "prompts"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    lib = tmp_path / "lib"
    proc = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()",
                           "-q", "build_py", "--build-lib", str(lib)],
                          cwd=src, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return lib


def _in_build(lib: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin", "HOME": str(lib.parent)}
    return subprocess.run([sys.executable, "-c", code], cwd=lib.parent, env=env,
                          capture_output=True, text=True)


def test_the_built_package_ships_the_schema_examples_and_readme(tmp_path: Path):
    lib = _build(tmp_path)
    assert _shipped(lib / "gitswarm" / "schema") == _shipped(SOURCE)
    proc = _in_build(lib, (
        "import gitswarm, json, sys; from importlib.resources import files\n"
        "root = files('gitswarm.schema')\n"
        "json.dump({'module': gitswarm.__file__,\n"
        "           'schema': root.joinpath('task.schema.json').read_text(encoding='utf-8'),\n"
        "           'examples': sorted(p.name for p in root.joinpath('examples').iterdir())}, sys.stdout)\n"))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert Path(got["module"]).is_relative_to(lib)
    assert json.loads(got["schema"]) == SCHEMA
    assert got["examples"] == [p.name for p in EXAMPLES]


def test_the_built_package_finds_its_readme_and_hooks(tmp_path: Path):
    lib = _build(tmp_path)
    proc = _in_build(lib, "from gitswarm.install import board_readme, hook_script\n"
                          "board_readme(); hook_script('pre-receive')\n")
    assert proc.returncode == 0, proc.stderr
