"""Before a goal runs: do the programs its commands name exist where they will run? A goal's
`test:`, `check:` and tasks' `run:`, and the `command:` of its command roles, run in the sandbox,
which shows the system paths and little else: a tool installed under /tmp or in the home folder is
`not found` there, and each attempt would fail the same way until the task is dead. So the first
word of each simple command (`a && b | c; d` gives a, b, c and d) is looked up with `command -v`,
run in the same sandbox as the command, and a goal naming one that is missing is refused at once,
saying which and how to fix it.

What cannot be told before the command runs is not refused: words with expansions (`$X`, globs,
backquotes), paths relative to the checkout (`./run.sh`), what follows `case` or a function
definition. A probe that cannot run at all refuses nothing."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .proc import run_killable
from .errors import GitswarmError

LISTS = frozenset({";", ";;", "&", "(", ")"})  # between and-or lists
REDIRECTS = frozenset({">", "<", ">>", ">&", "<&", "<>", ">|", "&>", "&>>", "<<<"})
CONDITIONS = frozenset({"if", "while", "until"})  # the condition surely runs; the body may not
OTHER_KEYWORDS = frozenset({"!", "{", "}", "time", "do", "done", "then", "fi"})
GIVE_UP = frozenset({"case", "function", "else", "elif", "for", "select"})  # what may not run, or is no program
PREFIXES = frozenset({"env", "exec", "nohup"})  # they run the word after them (and their options)
FUNCTION_RE = re.compile(r"[\w-]\s*\(\s*\)")
UNCHECKABLE = set("$`*?[]{}~\\'\"") | {"\t", " "}
# prints each name `command -v` does not find; exits 0 (a probe that fails otherwise tells nothing)
PROBE = 'for w do command -v "$w" >/dev/null 2>&1 || printf "%s\\n" "$w"; done; exit 0'
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Command:
    """A command a goal will run: where it is written (`path`, `field`), the line, and how the
    sandbox that runs it is made (`wrap`: argv -> the sandboxed argv)."""

    path: str
    field: str
    line: str
    wrap: Callable[[list[str]], list[str]]


def programs(line: str) -> list[str]:
    """The programs a shell command line surely runs, as far as they can be told from its text:
    the first word of each simple command (`cd x && pytest | tee log; make` gives cd, pytest, tee
    and make), without duplicates. Not a fallback's (`a || b`: only a, and of `a && b || c` only
    a: a missing b may be meant), nor a branch's (`if a; then b; fi`: only a, the condition).
    [] when the line does not parse, or holds what this reading does not follow (here-documents,
    arithmetic, function definitions)."""
    if "<<" in line.replace("<<<", "") or "$((" in line or FUNCTION_RE.search(line):
        return []
    words: list[str] = []
    for text in line.splitlines() or [""]:
        try:
            lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:  # unbalanced quotes (a quoted string over several lines): tell nothing
            return []
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token not in LISTS:
                segment.append(token)
                continue
            found, done = _segment(segment)
            words += found
            if done:
                return list(dict.fromkeys(words))
            segment = []
    return list(dict.fromkeys(words))


def _segment(tokens: list[str]) -> tuple[list[str], bool]:
    """The programs of one and-or list (`a && b | c || d`, between `;`, `&`, parentheses or line
    ends), and whether to read no further (after an `if`, `while` or `until` condition, a `case`
    or a `for`): (programs, stop)."""
    found: list[str] = []
    start, skip_next, option_arg = True, False, False
    fallback = "||" in tokens
    for token in tokens:
        if skip_next or option_arg:  # a redirection's file; an `env -u NAME`'s NAME
            skip_next = option_arg = False
        elif token in ("&&", "|", "|&", "||"):
            if token == "||" or (fallback and found):
                return found, False  # what follows may be meant to fail, or to stand in for what failed
            start = True
        elif token in REDIRECTS:
            skip_next = True
        elif not start:
            continue
        elif token in GIVE_UP:
            return found, True
        elif token in CONDITIONS:
            return _segment(tokens[tokens.index(token) + 1:])[0][:1], True
        elif token in PREFIXES or token.isdigit() or _assignment(token) or token in OTHER_KEYWORDS:
            pass  # `env A=1 prog`, `2>err prog`, `! prog`: the program is still to come
        elif token.startswith("-") and token != "-":
            option_arg = token in ("-u", "--unset", "-C", "--chdir")  # an option of env
        else:
            start = False
            if _checkable(token):
                found.append(token)
    return found, False


def _assignment(token: str) -> bool:
    name, eq, _ = token.partition("=")
    return bool(eq) and name.isidentifier()


def _checkable(word: str) -> bool:
    if not word or any(c in UNCHECKABLE or ord(c) < 32 for c in word):
        return False
    return "/" not in word or word.startswith("/")  # a path in the checkout: not here to look at


def missing(words: list[str], wrap: Callable[[list[str]], list[str]], cwd: Path) -> set[str]:
    """Which of `words` `command -v` does not find in the sandbox `wrap` makes (none when the
    probe itself cannot run: nothing is refused on a guess)."""
    if not words:
        return set()
    from .sandbox import agent_env

    try:
        ran = run_killable(wrap(["/bin/sh", "-c", PROBE, "sh", *words]), cwd, agent_env(), PROBE_TIMEOUT, keep=8000)
    except (GitswarmError, OSError):
        return set()
    if ran.ended != "exited" or ran.code != 0:
        return set()
    return set(ran.stdout.splitlines()) & set(words)


def unresolved(commands: list[Command], cwd: Path) -> GitswarmError | None:
    """Every command whose programs are not all found, in one error naming each file, field and
    program, with the fix; None when all resolve. Commands that share a sandbox (the same `wrap`)
    share one probe."""
    by_wrap: dict[int, list[Command]] = {}
    for c in commands:
        by_wrap.setdefault(id(c.wrap), []).append(c)
    lines = []
    for group in by_wrap.values():
        words = {c: programs(c.line) for c in group}
        gone = missing(list(dict.fromkeys(w for found in words.values() for w in found)), group[0].wrap, cwd)
        for c in group:
            named = [w for w in words[c] if w in gone]
            if named:
                lines.append(f"{c.path}: {c.field}: {', '.join(repr(w) for w in named)} not found in the sandbox "
                             f"this command runs in (`{' '.join(c.line.split())[:200]}`)")
    if not lines:
        return None
    return GitswarmError(
        "\n".join(lines),
        "the sandbox shows the system paths (/usr, /bin, /etc, ...), gitswarm's Python and the folders in "
        "GITSWARM_SANDBOX_PATHS, not /tmp or the home folder: install the tool system-wide (e.g. under "
        "/usr/local), or add its folder to GITSWARM_SANDBOX_PATHS where `gitswarm serve` runs; then restart "
        "serve or push the goal again")
