"""A hub served by gitolite (Debian's gitolite3) over a real sshd on loopback, set up as
docs/hosting.md says: gitswarm's hooks as gitolite repo-specific hooks, one key per gitolite user,
and the pusher's identity from gitolite's user name (GL_USER). Skips without gitolite3 or sshd;
fails instead when GITSWARM_REQUIRE_GITOLITE=1 (.ci/run sets it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gitswarm import events, identity

from conftest import commit_all, gitswarm, sh
import servers
from servers import Gitolite, gitolite_missing

pytestmark = pytest.mark.slow  # a minute: a hub behind gitolite over ssh

HOOKS_DIR = "local/hooks/repo-specific/gitswarm"  # under the gitolite account's home
CONF = """repo hub
    RW+ = alice bob
    option hook.pre-receive = gitswarm/pre-receive
    option hook.post-receive = gitswarm/post-receive
"""


def require_gitolite() -> None:
    """Skip where gitolite cannot run, saying why; fail instead under GITSWARM_REQUIRE_GITOLITE=1."""
    missing = gitolite_missing()
    if missing:
        if os.environ.get("GITSWARM_REQUIRE_GITOLITE") == "1":
            pytest.fail(f"GITSWARM_REQUIRE_GITOLITE=1 but {missing}")
        pytest.skip(missing)


@pytest.fixture
def gitolite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    require_gitolite()
    server = Gitolite(tmp_path)
    try:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server
    finally:
        server.stop()


def setup_hub(server: Gitolite, tmp_path: Path) -> Path:
    """docs/hosting.md's steps: the admin names the hub and its hooks in gitolite.conf; on the
    server, as gitolite's account, `gitswarm init --hooks-dir`, the pusher setting, HEAD, `gitolite setup`."""
    pushed = server.admin_push(CONF, tmp_path)
    assert "gitswarm/pre-receive' doesn't exist" in pushed  # gitolite says what is still missing
    hub = server.repo("hub")
    gitswarm("init", str(hub), "--hooks-dir", str(server.home / HOOKS_DIR))
    sh("git", "config", "gitswarm.pusherEnv", "gitolite", cwd=hub)
    sh("git", "symbolic-ref", "HEAD", "refs/heads/main", cwd=hub)  # gitolite made it with git's default
    server.gitolite("setup")  # links the repo-specific hooks, now that they exist
    return hub


def test_two_gitolite_users_claim_and_complete_and_gitolite_names_the_pusher(gitolite, tmp_path):
    hub = setup_hub(gitolite, tmp_path)
    hooks = hub / "hooks"
    assert os.readlink(hooks / "pre-receive").endswith("multi-hook-driver")  # gitolite runs its hooks...
    assert os.readlink(hooks / "pre-receive.h00-gitswarm_pre-receive") == str(gitolite.home / HOOKS_DIR / "pre-receive")
    assert "gitswarm-hook:" in (gitolite.home / HOOKS_DIR / "pre-receive").read_text()  # ...and they run gitswarm's
    assert sh("git", "symbolic-ref", "HEAD", cwd=hub).stdout.strip() == "refs/heads/main"

    alice, bob = "ssh://alice/hub", "ssh://bob/hub"
    first = gitswarm("task", "add", alice, "--title", "Parse CSS").stdout.strip()
    second = gitswarm("task", "add", bob, "--title", "Parse HTML").stdout.strip()
    assert gitswarm("claim", alice, "--worker", "alice-w0").stdout.strip() == first
    assert gitswarm("claim", bob, "--worker", "bob-w0").stdout.strip() == second
    assert identity.bindings(hub) == {"alice-w0": "alice", "bob-w0": "bob"}  # GL_USER, not the account

    # bob cannot complete alice's claim, even under her worker's name: his key is bob's
    tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
    stolen = gitswarm("complete", bob, first, "--worker", "alice-w0", "--summary", "mine now", check=False)
    assert stolen.returncode == 2, stolen
    assert "worker alice-w0 belongs to alice; this push comes from bob" in stolen.stderr, stolen.stderr
    assert "Traceback" not in stolen.stderr
    assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip

    gitswarm("complete", alice, first, "--worker", "alice-w0", "--summary", "parser")
    gitswarm("complete", bob, second, "--worker", "bob-w0", "--summary", "html")
    status = json.loads(gitswarm("status", alice, "--json").stdout)
    assert sorted(t["status"] for t in status["tasks"]) == ["done", "done"]
    # post-receive ran through gitolite's driver too, and recorded gitolite's user names
    spooled = events.pending(hub)
    assert {e.ref for e in spooled} == {"refs/heads/tasks"}
    assert {"alice", "bob"} <= {e.pusher for e in spooled}, spooled


def test_a_bad_push_through_gitolite_gets_the_guards_message(gitolite, tmp_path):
    hub = setup_hub(gitolite, tmp_path)
    tid = gitswarm("task", "add", "ssh://alice/hub", "--title", "Only for alice").stdout.strip()
    gitswarm("claim", "ssh://alice/hub", "--worker", "alice-w0")
    tip = sh("git", "rev-parse", "tasks", cwd=hub).stdout
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "tasks", "ssh://bob/hub", str(clone))
    path = clone / "tasks" / tid[2:4] / f"{tid}.yaml"
    path.write_text(path.read_text().replace("status: claimed", "status: done"))
    commit_all(clone, f"done {tid}")
    pushed = sh("git", "push", "origin", "HEAD:refs/heads/tasks", cwd=clone, check=False)
    assert pushed.returncode != 0
    assert "remote: gitswarm: rejected refs/heads/tasks" in pushed.stderr, pushed.stderr
    assert "pre-receive hook declined" in pushed.stderr
    assert sh("git", "rev-parse", "tasks", cwd=hub).stdout == tip


def test_the_hubs_own_pushes_pass_gitolites_update_hook_with_its_bypass(gitolite, tmp_path, monkeypatch):
    """serve and judge push to the hub's path: gitolite's update hook refuses that unless told
    where its code is and to let it through (the EnvironmentFile in docs/hosting.md)."""
    hub = setup_hub(gitolite, tmp_path)
    monkeypatch.setenv("HOME", str(gitolite.home))
    refused = gitswarm("task", "add", str(hub), "--title", "From the hub", check=False)
    assert refused.returncode == 2 and "hook declined" in refused.stderr, refused.stderr
    monkeypatch.setenv("GL_LIBDIR", gitolite.gitolite("query-rc", "GL_LIBDIR").stdout.strip())
    monkeypatch.setenv("GL_BYPASS_ACCESS_CHECKS", "1")
    tid = gitswarm("task", "add", str(hub), "--title", "From the hub").stdout.strip()
    assert tid.startswith("t-")


def test_init_refuses_hooks_that_gitolite_manages(gitolite, tmp_path):
    hub = setup_hub(gitolite, tmp_path)
    refused = gitswarm("init", str(hub), check=False)
    assert refused.returncode == 2
    assert "gitolite's multi-hook driver" in refused.stderr and "--hooks-dir" in refused.stderr, refused.stderr
    assert os.readlink(hub / "hooks" / "pre-receive").endswith("multi-hook-driver")  # left alone
    again = gitswarm("init", str(hub), "--hooks-dir", str(gitolite.home / HOOKS_DIR)).stdout
    assert "already a gitswarm hub" in again


def test_without_gitolite_it_skips_or_fails_as_ci_asks(monkeypatch):
    monkeypatch.setattr(servers, "GITOLITE", "/nonexistent/gitolite")
    monkeypatch.delenv("GITSWARM_REQUIRE_GITOLITE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install gitolite3"):
        require_gitolite()
    monkeypatch.setenv("GITSWARM_REQUIRE_GITOLITE", "1")
    with pytest.raises(pytest.fail.Exception, match="GITSWARM_REQUIRE_GITOLITE=1 but"):
        require_gitolite()
