"""Hostile goal files and settings pushed to main: refused whole, at once, cheaply, with an answer
that is safe to show on a terminal; the same files under `gitswarm check`. Real hub, real push."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import gitswarm, sh
from test_check import clone_of, write

BOMB = "---\ntasks:\n" + "".join(
    f"  - &a{i} {{title: x{i}, description: [*a{i - 1}, *a{i - 1}, *a{i - 1}]}}\n" if i else "  - &a0 {title: x}\n"
    for i in range(12)) + "---\nBoom.\n"
DEEP = "---\nmodels: " + "[" * 100_000 + "]" * 100_000 + "\n---\nDeep.\n"  # libyaml's scanner stops at 1000
BLOCK = "---\n" + "".join(" " * i + "models:\n" for i in range(600)) + " " * 600 + "worker: 1\n---\nDeep.\n"


def refused(hub: Path, clone: Path, *fragments: str) -> str:
    result = sh("git", "push", "origin", "HEAD:refs/heads/main", cwd=clone, check=False)
    assert result.returncode != 0, result.stderr
    assert "rejected refs/heads/main" in result.stderr and "internal error" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert sh("git", "rev-parse", "-q", "--verify", "refs/heads/main", cwd=hub, check=False).returncode != 0
    return result.stderr


@pytest.mark.parametrize("path, data, fragment", [
    ("goals/bomb.md", BOMB.encode(), "YAML anchors and aliases are not allowed"),
    ("goals/deep.md", DEEP.encode(), "exceeded maximum nesting depth"),
    ("goals/block.md", BLOCK.encode(), "models.models.models"),
    (".gitswarm.yaml", b"worker: " + b"{a: " * 5_000 + b"1" + b"}" * 5_000 + b"\n", "over 32 deep"),
    ("goals/big.md", b"---\n---\n" + b"x" * (3 << 20), "is 3145736 bytes; the limit is 262144"),
    (".gitswarm.yaml", b"# " + b"x" * (1 << 20), "the limit is 65536"),
    ("goals/latin1.md", "---\nmax_cycles: 3\n---\nCaf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
    (".gitswarm.yaml", b"model: !!python/object/apply:os.system [id]\n", "YAML tags are not allowed"),
])
def test_hostile_files_are_refused_cleanly_and_fast(hub: Path, tmp_path: Path, path: str, data: bytes,
                                                      fragment: str) -> None:
    clone = clone_of(hub, tmp_path)
    write(clone, {path: data})
    started = time.monotonic()
    refused(hub, clone, fragment)
    took = time.monotonic() - started
    local = gitswarm("check", str(clone), check=False)
    assert local.returncode == 1 and fragment in local.stdout, local.stdout
    print(f"{path}: refused in {took:.2f}s")  # measured, not asserted


def test_a_link_or_a_submodule_in_place_of_a_goal_is_refused(hub: Path, tmp_path: Path) -> None:
    clone = clone_of(hub, tmp_path)
    (clone / "goals").mkdir()
    (clone / "goals" / "link.md").symlink_to("/etc/passwd")
    write(clone, {})
    head = sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()
    sh("git", "update-index", "--add", "--cacheinfo", f"160000,{head},goals/sub.md", cwd=clone)
    sh("git", "commit", "-q", "-m", "a submodule", cwd=clone)
    refused(hub, clone, "goals/link.md: is not a regular file (mode 120000)",
            "goals/sub.md: is not a regular file (mode 160000)")
    local = gitswarm("check", str(clone), check=False)
    assert "goals/link.md: is not a regular file" in local.stdout and "root:" not in local.stdout


def test_what_a_file_writes_cannot_drive_the_pushers_terminal(hub: Path, tmp_path: Path) -> None:
    """Unknown keys are named in the answer: escape sequences and newlines in them are dropped, a long
    one is cut, and thousands of them make a bounded answer."""
    keys = "".join(f'"k{i}\\e]0;owned\\a\\nremote: gitswarm: accepted{"y" * (900 if i == 0 else 200)}": 1\n'
                   for i in range(1000))
    clone = clone_of(hub, tmp_path)
    write(clone, {"goals/noisy.md": f"---\n{keys}---\nNoise.\n".encode()})
    err = refused(hub, clone, "1000 problem(s)", "... and 950 more")
    assert "\x1b" not in err and "\x07" not in err
    assert not any(line.startswith("remote: gitswarm: accepted") for line in err.splitlines())
    assert max(len(line) for line in err.splitlines()) < 500
    assert len(err) < 60_000
