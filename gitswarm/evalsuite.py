"""An eval suite: a folder of entries, one folder each, read by `gitswarm eval` (gitswarm/eval.py).

    <suite>/<entry>/entry.yaml   check: "python3 -I -B check_x.py" (the hidden check; required)
                                 difficulty: 1                    (1-5, for ordering and tables; default 3)
                                 kind: function                   (free words: function, bugfix, refactor, ...)
                                 timeout: 20m                     (a trial's wall time, serve included)
                                 check_timeout: 5m                (the hidden check's)
    <suite>/<entry>/goal.md      the goal file, pushed as goals/<entry>.md (checked like any goal)
    <suite>/<entry>/repo/        the repository snapshot pushed to main first
    <suite>/<entry>/hidden/      files copied over main's final tree before the check runs (optional)

The hidden check never reaches the hub: after the run, main's final tree is exported to a folder
outside it, the hidden files are copied over it, and the check runs there in the sandbox; exit 0
means the goal is met. The built-in suite ships in the package (gitswarm/evalsuites/builtin/);
sandboxed agents never see that folder (gitswarm.sandbox hides it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sandbox
from .proc import run_killable
from .errors import FileInvalid, GitswarmError
from .goal import goal_errors
from .names import NAME_RE
from .text import printable
from .validate import DURATION_HINT, parse_duration, shown, typename, unknown_hint
from .yamlfile import load_yaml

SUITES = sandbox.EVAL_SUITES  # the suites shipped in the package, hidden from sandboxed agents
BUILTIN = "builtin"
ENTRY_FILE = "entry.yaml"
FIELDS = ("check", "difficulty", "kind", "timeout", "check_timeout")
DEFAULT_TIMEOUT = 20 * 60.0
DEFAULT_CHECK_TIMEOUT = 5 * 60.0


class SuiteInvalid(FileInvalid):
    """An eval suite's entry breaks the rules (names the file and the field)."""


@dataclass(frozen=True)
class Entry:
    """One goal of a suite: its snapshot, goal file and hidden check."""

    name: str
    folder: Path
    check: str
    goal_text: str
    difficulty: int = 3
    kind: str = ""
    timeout: float = DEFAULT_TIMEOUT
    check_timeout: float = DEFAULT_CHECK_TIMEOUT

    @property
    def snapshot(self) -> Path:
        return self.folder / "repo"

    @property
    def hidden(self) -> Path:
        return self.folder / "hidden"

    @property
    def goal_path(self) -> str:
        return f"goals/{self.name}.md"


@dataclass(frozen=True)
class Suite:
    name: str
    folder: Path
    entries: tuple[Entry, ...]

    def only(self, names: list[str]) -> "Suite":
        """The entries named (all of them for []); an unknown name is an error saying the names."""
        known = {e.name for e in self.entries}
        for name in names:
            if name not in known:
                raise GitswarmError(f"--only: {name!r} is no entry of suite {self.name}",
                                    unknown_hint(name, sorted(known), "its entries are"))
        return self if not names else Suite(self.name, self.folder, tuple(e for e in self.entries if e.name in names))


def locate(suite: str | Path | None) -> Path:
    """A suite's folder: a path, or the name of a suite shipped in the package (default builtin)."""
    given = Path(suite) if suite is not None else SUITES / BUILTIN
    if not given.exists() and (SUITES / str(suite)).is_dir():
        given = SUITES / str(suite)
    if not given.is_dir():
        shipped = sorted(p.name for p in SUITES.iterdir() if p.is_dir()) if SUITES.is_dir() else []
        raise GitswarmError(f"{suite}: no such suite folder",
                            f"give a folder of entries (<entry>/entry.yaml, goal.md, repo/) or a shipped suite: "
                            f"{', '.join(shipped)}")
    return given.resolve()


def load_suite(suite: str | Path | None = None) -> Suite:
    """Read and check every entry of a suite; SuiteInvalid (or the goal's GoalInvalid) names the
    file and field of the first problem."""
    folder = locate(suite)
    entries = [load_entry(p) for p in sorted(folder.iterdir()) if p.is_dir() and (p / ENTRY_FILE).is_file()]
    if not entries:
        raise SuiteInvalid(str(folder), None, "holds no entry",
                           f"give each goal a folder with {ENTRY_FILE}, goal.md and repo/")
    return Suite(folder.name, folder, tuple(sorted(entries, key=lambda e: (e.difficulty, e.name))))


def load_entry(folder: Path) -> Entry:
    path = str(folder / ENTRY_FILE)

    def fail(field_name: str | None, problem: str, hint: str | None = None) -> SuiteInvalid:
        return SuiteInvalid(path, field_name, problem, hint)

    name = folder.name
    if not NAME_RE.match(name):
        raise fail(None, f"{name!r} is not a goal name", "name the entry's folder with letters, digits, '.', '_', '-'")
    doc = load_yaml((folder / ENTRY_FILE).read_text(encoding="utf-8"), path, fail)
    if not isinstance(doc, dict):
        raise fail(None, f"must hold a mapping, not {typename(doc)}", 'write check: "<command>"')
    for key in doc:
        if key not in FIELDS:
            raise fail(str(key), "unknown field", unknown_hint(key, FIELDS))
    check = doc.get("check")
    if not isinstance(check, str) or not check.strip():
        raise fail("check", f"{shown(check)} is not a command",
                   'the hidden check, run on main\'s final tree: check: "python3 -I -B check_x.py"')
    difficulty = doc.get("difficulty", 3)
    if not isinstance(difficulty, int) or isinstance(difficulty, bool) or not 1 <= difficulty <= 5:
        raise fail("difficulty", f"{shown(difficulty)} is not a whole number from 1 to 5", "difficulty: 2")
    kind = doc.get("kind", "")
    if not isinstance(kind, str):
        raise fail("kind", f"{shown(kind)} is not text", "kind: bugfix")
    if not (folder / "repo").is_dir():
        raise fail(None, f"{folder / 'repo'} is missing", "put the repository snapshot pushed to main in repo/")
    goal_file = folder / "goal.md"
    if not goal_file.is_file():
        raise fail(None, f"{goal_file} is missing", "write the goal, as goals/<name>.md would be, in goal.md")
    goal_text = goal_file.read_text(encoding="utf-8")
    problems = goal_errors(f"goals/{name}.md", goal_text)
    if problems:
        raise SuiteInvalid(str(goal_file), problems[0].field, problems[0].problem, problems[0].hint)
    return Entry(name=name, folder=folder.resolve(), check=check, goal_text=goal_text, difficulty=difficulty,
                 kind=kind, timeout=_duration(doc, "timeout", DEFAULT_TIMEOUT, fail),
                 check_timeout=_duration(doc, "check_timeout", DEFAULT_CHECK_TIMEOUT, fail))


def _duration(doc: dict[str, Any], key: str, default: float, fail) -> float:
    value = doc.get(key)
    if value is None:
        return default
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise fail(key, f"{shown(value)} is not a duration", DURATION_HINT)
    return seconds


def copy_tree(source: Path, target: Path) -> None:
    """Copy a folder's files over another (what is there is replaced); symlinks are copied as links."""
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


def hidden_check(entry: Entry, tree: Path, hide: tuple[Path, ...] = ()) -> tuple[bool, str]:
    """Copy the entry's hidden files over `tree` (a folder of its own: main's final tree, exported)
    and run its check there in the sandbox, killed at check_timeout (a failure). (passed, output's tail)."""
    if entry.hidden.is_dir():
        copy_tree(entry.hidden, tree)
    ran = run_killable(sandbox.wrap(["/bin/sh", "-c", entry.check], tree, hide), tree, sandbox.agent_env(),
                       entry.check_timeout, keep=4000, merge=True)
    if ran.ended == "time":
        return False, f"timed out after {entry.check_timeout:g}s\n{printable(ran.stdout[-2000:], 2000)}"
    return ran.code == 0, f"exit {ran.code}\n{printable(ran.stdout[-2000:], 2000)}"
