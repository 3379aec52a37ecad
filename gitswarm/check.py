"""Every problem of the goal files (goals/<name>.md), the settings (.gitswarm.yaml) and the prompt
overrides (.gitswarm/prompts/<name>.md) at once, before they reach a running swarm: `gitswarm
check` on a clone's working tree, and the hub's pre-receive hook on what a push changes on main.
Both run the validators of gitswarm.goal and gitswarm.config in their collecting mode
(gitswarm.validate.Collect), and gitswarm.prompts' own filling of a template: one validator each,
and each error names the file, the field and the fix ("did you mean 'model'?").

What depends on the host that serves main (its model endpoints, whether agents may reach its
network) is not checked here: `gitswarm serve` marks a goal it cannot run invalid on its record,
saying why, as it does for any goal already on main.
"""

from __future__ import annotations

from pathlib import Path

from .config import CONFIG_PATH, MAX_FILE_BYTES as CONFIG_MAX, config_errors
from .errors import FileInvalid
from .git import ZERO
from .githook import HookRepo
from .goal import GOALS_DIR, MAX_FILE_BYTES as GOAL_MAX, goal_errors, is_goal_path
from .names import MAIN
from .prompts import OVERRIDE_DIR, VARIABLES, PromptError, fill
from .text import printable
from .validate import unknown_hint

REGULAR = ("100644", "100755")
MAX_REPORTED = 50  # problems said in full; the rest are counted
LINE_MAX = 400  # characters of one line said (a field's name comes from the file: it may be long)


def checked(path: str) -> bool:
    """Whether a path on main is one this module checks: .gitswarm.yaml, a goal file or a prompt
    override (a Markdown file directly in .gitswarm/prompts/, a README there excepted)."""
    return path == CONFIG_PATH or is_goal_path(path) or _is_prompt(path)


def _is_prompt(path: str) -> bool:
    folder, _, name = path.rpartition("/")
    return folder == OVERRIDE_DIR and name.endswith(".md") and name.lower() != "readme.md"


def _limit(path: str) -> int:
    return CONFIG_MAX if path == CONFIG_PATH else GOAL_MAX


def _prompt_errors(path: str, text: str) -> list[FileInvalid]:
    """An override's problem: a name gitswarm has no prompt for (it would be ignored), or a
    placeholder its prompt is not given (the role would stop at it)."""
    name = path.rpartition("/")[2][:-3]
    if name not in VARIABLES:
        return [FileInvalid(path, None, "overrides no prompt of gitswarm's, so it would never be used",
                            unknown_hint(name, sorted(VARIABLES),
                                         f"name it {OVERRIDE_DIR}/<prompt>.md; the prompts are"))]
    try:
        fill(text, {v: "" for v in VARIABLES[name]}, path)
    except PromptError as e:
        if e.variable is None:
            return [FileInvalid(path, None, e.problem, e.hint)]
        return [FileInvalid(path, f"{{{{{e.variable}}}}}", f"the {name} prompt is given no such variable",
                            unknown_hint(e.variable, VARIABLES[name], "it is given") + r"; write \{{ for a literal {{")]
    return []


def check_file(path: str, data: bytes) -> list[FileInvalid]:
    """Every problem of one file (`path` as on main; checked(path) holds), [] when it is valid."""
    limit = _limit(path)
    if len(data) > limit:
        return [FileInvalid(path, None, f"is {len(data)} bytes; the limit is {limit}", "make it shorter")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return [FileInvalid(path, None, f"is not UTF-8 text (byte {e.start})", "save it as UTF-8")]
    if path == CONFIG_PATH:
        return list(config_errors(text, path))
    return list(goal_errors(path, text)) if is_goal_path(path) else _prompt_errors(path, text)


def check_tree(root: Path) -> tuple[list[str], list[FileInvalid]]:
    """(the files checked, every problem found) in a working tree: `root`/.gitswarm.yaml and
    `root`/goals/*.md and `root`/.gitswarm/prompts/*.md. A symbolic link or a file over its limit is
    refused unread, as the hub would."""
    paths = [CONFIG_PATH] if (root / CONFIG_PATH).is_symlink() or (root / CONFIG_PATH).exists() else []
    for folder in (GOALS_DIR, OVERRIDE_DIR):
        if (root / folder).is_dir() and not (root / folder).is_symlink():
            paths += sorted(f"{folder}/{p.name}" for p in (root / folder).iterdir() if checked(f"{folder}/{p.name}"))
    errors: list[FileInvalid] = []
    for path in paths:
        file = root / path
        if file.is_symlink() or not file.is_file():
            errors.append(FileInvalid(path, None, "is not a regular file", "make it a plain file, not a link"))
            continue
        limit = _limit(path)
        size = file.stat().st_size
        if size > limit:
            errors.append(FileInvalid(path, None, f"is {size} bytes; the limit is {limit}", "make it shorter"))
            continue
        errors += check_file(path, file.read_bytes())
    return paths, errors


def check_changes(changed: list[tuple[str, str, str]], repo: HookRepo) -> list[str]:
    """The hub's guard for main: of the (path, blob, mode) a push changes on main (hookimpl diffs
    main's old tip against the new one, and passes what falls under workrules.PROTECTED), the goal
    files, settings and prompts each checked whole; nothing else is read. The lines to print
    (every problem of every file), or []."""
    errors: list[FileInvalid] = []
    for path, blob, mode in changed:
        if blob == ZERO or not checked(path):
            continue
        if mode not in REGULAR:
            errors.append(FileInvalid(path, None, f"is not a regular file (mode {mode})",
                                      "make it a plain file, not a link or a submodule"))
            continue
        limit = _limit(path)
        size = repo.size(blob) or 0
        if size > limit:  # refused before it is read into memory
            errors.append(FileInvalid(path, None, f"is {size} bytes; the limit is {limit}", "make it shorter"))
            continue
        errors += check_file(path, repo.read(blob) or b"")
    if not errors:
        return []
    return [f"gitswarm: rejected {MAIN}: {len(errors)} problem(s) in its goal files, settings and prompts "
            "(`gitswarm check` in your clone shows them before you push)"] + report(errors, "gitswarm:   ")


def report(errors: list[FileInvalid], prefix: str = "") -> list[str]:
    """Lines saying the problems (the first MAX_REPORTED), each with its hint. What the file wrote
    (a field's name) reaches a terminal: escape sequences and controls are dropped, each line is
    one line, cut to LINE_MAX characters."""
    def line(text: str, indent: str = "") -> str:
        text = " ".join(printable(text, 1 << 20).split())
        return prefix + indent + (text if len(text) <= LINE_MAX else text[:LINE_MAX - 3] + "...")

    lines = []
    for e in errors[:MAX_REPORTED]:
        lines.append(line(e.message))
        if e.hint:
            lines.append(line(f"hint: {e.hint}", "  "))
    if len(errors) > MAX_REPORTED:
        lines.append(line(f"... and {len(errors) - MAX_REPORTED} more"))
    return lines
