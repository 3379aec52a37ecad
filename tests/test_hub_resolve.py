"""Finding the hub from where the user stands (gitswarm/remotes.py) and the exit code of a hub that
cannot be reached: real hubs, real clones, the real command line."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from conftest import gitswarm, sh

from gitswarm.errors import EXIT_NOTHING_READY, EXIT_UNREACHABLE


def _clone(hub: Path, tmp_path: Path, name: str = "work") -> Path:
    path = tmp_path / name
    sh("git", "clone", "-q", str(hub), str(path))
    return path


def test_status_from_a_clone_finds_its_hub(hub: Path, tmp_path: Path) -> None:
    """No argument, `origin`, `.` and a subdirectory of the clone all mean the clone's remote."""
    clone = _clone(hub, tmp_path)
    added = gitswarm("task", "add", "--title", "from the clone", cwd=clone).stdout.strip()
    sub = clone / "deep" / "er"
    sub.mkdir(parents=True)
    for args, cwd in [((), clone), (("origin",), clone), ((".",), clone), ((), sub), (("origin",), sub),
                      ((str(clone),), tmp_path)]:
        out = json.loads(gitswarm("status", *args, "--json", cwd=cwd).stdout)
        assert [t["id"] for t in out["tasks"]] == [added], (args, cwd)


def test_the_only_remote_stands_for_origin(hub: Path, tmp_path: Path) -> None:
    clone = _clone(hub, tmp_path)
    sh("git", "remote", "rename", "origin", "hub", cwd=clone)
    gitswarm("task", "add", "--title", "x", cwd=clone)
    assert "OPEN (1)" in gitswarm("status", cwd=clone).stdout
    assert "OPEN (1)" in gitswarm("status", "hub", cwd=clone).stdout
    sh("git", "remote", "add", "mirror", "/nowhere", cwd=clone)  # two remotes, neither origin: ask
    which = gitswarm("status", cwd=clone, check=False)
    assert which.returncode == 2 and "which is the hub" in which.stderr and "gitswarm status" in which.stderr


def test_a_bare_hub_stands_for_itself(hub: Path) -> None:
    """In the hub, the console script (`python -m` would import the hub's own gitswarm/ folder)."""
    script = str(Path(sys.executable).parent / "gitswarm")
    sh(script, "task", "add", "--title", "x", cwd=hub)
    assert "OPEN (1)" in sh(script, "status", cwd=hub).stdout
    assert "OPEN (1)" in gitswarm("status", cwd=hub / "hooks").stdout


def test_commands_with_more_arguments_take_a_remote_name(hub: Path, tmp_path: Path) -> None:
    clone = _clone(hub, tmp_path)
    task_id = gitswarm("task", "add", "origin", "--title", "named", cwd=clone).stdout.strip()
    assert "title: named" in gitswarm("task", "show", "origin", task_id, cwd=clone).stdout
    assert gitswarm("claim", "-w", "w1", cwd=clone).stdout.strip() == task_id
    gitswarm("release", "origin", task_id, "-w", "w1", cwd=clone)


def test_hints_fit_where_the_user_stands(hub: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    sh("git", "init", "-q", str(lonely))
    no_remote = gitswarm("status", cwd=lonely, check=False)
    assert no_remote.returncode == 2 and "clone with no remote" in no_remote.stderr
    assert "git remote add origin HUB" in no_remote.stderr and "gitswarm init" not in no_remote.stderr
    outside = gitswarm("status", cwd=tmp_path, check=False)
    assert outside.returncode == 2 and "not in a git repository" in outside.stderr
    plain = tmp_path / "plain.git"
    sh("git", "init", "-q", "--bare", str(plain))
    clone = _clone(plain, tmp_path, "of-plain")
    not_hub = gitswarm("status", cwd=clone, check=False)  # the clone's remote is named, not the clone
    assert not_hub.returncode == 2 and f"{plain} has no tasks branch" in not_hub.stderr
    assert f"gitswarm init {plain}`" in not_hub.stderr and str(clone) not in not_hub.stderr


def test_an_unreachable_hub_has_its_own_exit_code(hub: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        for where in (str(tmp_path / "no-such-hub.git"), f"git://127.0.0.1:{port}/hub.git"):
            for args in (("status", where), ("claim", where, "-w", "w1"), ("task", "add", where, "--title", "x")):
                proc = gitswarm(*args, check=False)
                assert proc.returncode == EXIT_UNREACHABLE, (args, proc.stderr)
                assert "hint:" in proc.stderr and "Please make sure" not in proc.stderr
    empty = gitswarm("claim", str(hub), "-w", "w1", check=False)
    assert empty.returncode == EXIT_NOTHING_READY and "no ready task" in empty.stderr


def test_init_on_a_clone_names_the_clones_hub(hub: Path, tmp_path: Path) -> None:
    clone = _clone(hub, tmp_path)
    refused = gitswarm("init", str(clone), check=False)
    assert refused.returncode == 2 and "is not a bare git repository" in refused.stderr
    assert f"is a clone of {hub}" in refused.stderr and "`gitswarm status` in the clone" in refused.stderr
