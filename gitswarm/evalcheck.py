"""The hidden check of an eval trial, run on the hub's main: on its final tree (did the swarm meet
the goal?) and on the tree each of the judge's verdicts saw (was the judge right?). The tree a
verdict saw is main's tip at the verdict's time, by the hub's reflog of main (`gitswarm init`
turns reflogs on): to the second, so a landing in the very second of a verdict counts as seen.
Each tree is exported (`git archive`) into a folder of its own outside the hub, where the hidden
files are copied over it and the check runs in the sandbox (gitswarm.evalsuite.hidden_check)."""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path
from typing import Any

from . import git
from .names import MAIN
from . import task as T
from .errors import GitswarmError
from .evalsuite import Entry, hidden_check



def export_tree(hub: Path, rev: str, tree: Path) -> None:
    """The files of `rev` in `tree` (a new folder); empty when there is no such commit. Refuses
    (GitswarmError) a tree whose links or paths would leave the folder: agents wrote it."""
    tree.mkdir(parents=True)
    proc = git.run(["archive", "--format=tar", rev], cwd=hub, check=False)
    if proc.returncode != 0:
        return
    try:
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
            members = archive.getmembers()
            for member in members:
                _inside(member)
            # tarfile's own "data" filter too, where this Python has it (3.11.4 and later)
            archive.extractall(tree, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except tarfile.TarError as e:  # what agents committed: the trial fails, saying why; the eval goes on
        raise GitswarmError(f"main's tree {rev} cannot be exported safely for the hidden check: {e}") from None


def _inside(member: tarfile.TarInfo) -> None:
    """Refuse (tarfile.TarError) what could reach outside the folder it is extracted into: an
    absolute path or a `..` in a name or a link's target (with none, every link resolves inside,
    through other links too), a hard link, a device or a fifo."""
    parts = member.name.split("/")
    if member.name.startswith("/") or ".." in parts:
        raise tarfile.TarError(f"{member.name!r} is a path outside the tree")
    if member.issym() and (member.linkname.startswith("/") or ".." in member.linkname.split("/")):
        raise tarfile.TarError(f"{member.name!r} links to {member.linkname!r}, outside the tree")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise tarfile.TarError(f"{member.name!r} is not a file, a folder or a link")


def main_history(hub: Path) -> list[tuple[int, str]]:
    """(unix time, commit) of every move of main, oldest first, from the hub's reflog."""
    proc = git.run(["log", "-g", "--format=%gd %H", "--date=unix", MAIN], cwd=hub, check=False)
    moves = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        stamp, _, sha = line.rpartition(" ")
        when = stamp[stamp.rfind("{") + 1:-1]
        if when.isdigit() and len(sha) == 40:
            moves.append((int(when), sha))
    return sorted(moves, key=lambda m: m[0])  # stable: the reflog's own order within a second


def tip_at(history: list[tuple[int, str]], at: str) -> str | None:
    """main's tip at a board time (a verdict's `at`)."""
    second = math.floor(T.timestamp(at))
    seen = [sha for when, sha in history if when <= second]
    return seen[-1] if seen else None


def run_checks(entry: Entry, hub: Path, folder: Path, verdicts: list[dict[str, Any]]) -> tuple[bool, str]:
    """The hidden check on main's final tree ((passed, output)); and each verdict's `passed`: the
    check on the tree it saw (each distinct tree checked once; None when main had no commit then)."""
    history = main_history(hub)
    final = history[-1][1] if history else None
    results: dict[str | None, tuple[bool, str]] = {}

    def check(sha: str | None, name: str) -> tuple[bool, str]:
        if sha not in results:
            tree = folder / name
            export_tree(hub, sha or MAIN, tree)
            results[sha] = hidden_check(entry, tree, hide=(hub,))
        return results[sha]

    passed, output = check(final, "tree")
    for n, verdict in enumerate(verdicts, 1):
        sha = tip_at(history, verdict["at"])
        verdict["passed"] = None if sha is None else check(sha, f"tree-verdict{n}")[0]
    return passed, output
