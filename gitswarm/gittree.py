"""Comparing two trees as `git diff-tree -r --no-renames` does, reading only what differs. Part of
the git layer (gitswarm/git.py): the hub's replay of claims, the board's changed files and the
guard's reader (gitswarm/githook.py) compare trees through it."""

from __future__ import annotations

import re
from typing import NamedTuple


class Delta(NamedTuple):
    """One file that differs between two trees, as `git diff-tree -r --no-renames` gives it:
    status A, D, M or T (its type changed: a file, a link, a submodule), ids and modes (ZERO and 0
    on the side where it is absent), its path."""
    status: str
    old_id: str
    new_id: str
    path: str
    old_mode: int
    new_mode: int


_TREE_ENTRY = {width: re.compile(rb"([0-7]{1,7}) ([^\0]+)\0(.{%d})" % width, re.S) for width in (20, 32)}  # sha1, sha256


def tree_changes(repo, old, new, prefix: str = "") -> list[Delta]:
    """The files that differ between two trees (ids; None: the empty tree), in git's order.
    Subtrees of the same id are not entered, and of two trees only the entries that differ are
    looked at: a change of one task file reads the few trees on its path (libgit2's own diff reads
    every entry of both trees: 45 ms against git's 2.7 ms at 100,000 task files)."""
    sides: dict[bytes, list] = {}
    one, two = _tree_entries(repo, old), _tree_entries(repo, new)
    for side, entries in ((0, one - two), (1, two - one)):
        for mode, name, oid in entries:
            sides.setdefault(name + (b"/" if mode == 0o40000 else b""), [None, None])[side] = (mode, oid.hex())
    out: list[Delta] = []
    for key in sorted(sides):
        a, b = sides[key]
        path = prefix + key.rstrip(b"/").decode("utf-8", "surrogateescape")
        if key.endswith(b"/"):  # a folder on one side or both: what differs below it
            out += tree_changes(repo, a and a[1], b and b[1], path + "/")
        elif a is None or b is None:
            mode, oid = a or b
            zero = "0" * len(oid)  # ZERO of this repository's ids (sha1 or sha256)
            out.append(Delta("D", oid, zero, path, mode, 0) if b is None else Delta("A", zero, oid, path, 0, mode))
        else:
            out.append(Delta("M" if a[0] & 0o170000 == b[0] & 0o170000 else "T", a[1], b[1], path, a[0], b[0]))
    return out


def _tree_entries(repo, oid) -> set[tuple[int, bytes, bytes]]:
    """(mode as git shows it, name, raw id) of each entry of a tree (None: none), parsed from its
    bytes whole (a tree that is not entries end to end raises ValueError: never half read)."""
    if oid is None:
        return set()
    kind, data = repo.odb.read(oid)
    if int(kind) != 2:
        raise ValueError(f"{oid} is not a tree")
    entries, size = set(), 0
    for mode, name, raw in _TREE_ENTRY[len(str(oid)) // 2].findall(data):
        size += len(mode) + len(name) + len(raw) + 2
        entries.add((_canon_mode(int(mode, 8)), name, raw))
    if size != len(data):
        raise ValueError(f"tree {oid} is malformed")
    return entries


def _canon_mode(mode: int) -> int:
    """A tree entry's mode as git reads it (canon_mode): 100644 or 100755, 120000, 40000, 160000."""
    kind = mode & 0o170000
    if kind == 0o100000:
        return 0o100755 if mode & 0o100 else 0o100644
    return kind if kind in (0o120000, 0o40000) else 0o160000
