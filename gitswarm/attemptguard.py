"""The hub's guard for best of N's refs (gitswarm/attempts.py): `refs/gitswarm/attempts/<task>/<k>`
is created once, in the same push as the completion of attempt `<task>-a<k>` by its holder (the
board's rules check the holder: only the worker of that attempt can push it), at a commit that is
that attempt's own work (its Gitswarm-Task trailer names the attempt) and not on main. Never moved,
never deleted."""

from __future__ import annotations

from typing import Callable

from .attempts import attempt_of
from .errors import RuleViolation
from .githook import HookRepo
from .names import attempts_ref, created_once, parse_attempts_ref


def check_attempts(refs: dict[str, tuple[str, str]], moved: list, repo: HookRepo,
                   on_main: Callable[[str], bool], trailers: Callable[[str], list[str]]) -> None:
    """`moved`: the tasks this push changes, as it leaves them; `trailers(commit)`: the tasks a
    commit's Gitswarm-Task trailers name."""
    completed = {}
    for t in moved:
        parent = attempt_of(t) if t.status == "done" else None
        if parent is not None:
            completed[attempts_ref(*parent)] = t
    for name, (old, new) in refs.items():
        if parse_attempts_ref(name) is None:
            continue
        created_once(name, old, new, "an attempt's ref",
                     "each attempt of a task keeps its own ref; the losers' stay as they are")
        t = completed.get(name)
        if t is None:
            raise RuleViolation(name, "is created only together with the completion of its attempt "
                                "(<task>-a<k>, Gitswarm-Action: complete) by the worker that holds it",
                                "let gitswarm's worker push it: it completes the attempt in the same atomic push")
        if (repo.info(new) or ("",))[0] != "commit":
            raise RuleViolation(name, f"{new[:10]} is not a commit")
        named = trailers(new)
        if named != [t.id]:
            raise RuleViolation(name, f"commit {new[:10]} is not the attempt's own work: its Gitswarm-Task "
                                f"trailers name {', '.join(named) or 'no task'}, not only {t.id}",
                                f"push the attempt's commit, ending with the trailer Gitswarm-Task: {t.id}")
        if on_main(new):
            raise RuleViolation(name, f"commit {new[:10]} is already on main: it holds no new work",
                                "push the attempt's own commit, made on main's tip")
