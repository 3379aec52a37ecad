"""Who pushed: the hooks record the identity the transport gives (GITSWARM_PUSHER set by the
server's admin, REMOTE_USER from a web server, the ssh account), bind each worker name to the first
identity that acts for it, and refuse pushes acting for a worker bound to someone else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gitswarm import events, identity

from conftest import gitswarm, sh
from servers import serve


def test_the_pusher_comes_from_what_the_server_sets():
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    assert identity.pusher({}) is None  # a path: anonymous
    assert identity.pusher({"REMOTE_ADDR": "10.0.0.2"}) is None  # git daemon: anonymous
    assert identity.pusher({"REMOTE_USER": "carol", "GATEWAY_INTERFACE": "CGI/1.1"}) == "carol"
    assert identity.pusher({"REMOTE_USER": "carol", "REMOTE_ADDR": "10.0.0.2"}) is None  # no web server
    assert identity.pusher({"SSH_CONNECTION": "1 2 3 4", "USER": "alice", "LOGNAME": "alice"}) == me
    # GITSWARM_PUSHER counts only where the operator trusts it, and over ssh under a forced command
    forced = {"SSH_CONNECTION": "1 2 3 4", "SSH_ORIGINAL_COMMAND": "git-receive-pack 'x'", "GITSWARM_PUSHER": "alice"}
    assert identity.pusher(forced, trust=set()) == me
    assert identity.pusher(forced, trust={"ssh"}) == "alice"
    assert identity.pusher(dict(forced, SSH_ORIGINAL_COMMAND=""), trust={"ssh"}) == me
    assert identity.pusher({"GITSWARM_PUSHER": "alice"}, trust={"ssh", "http"}) is None
    assert identity.pusher({"GITSWARM_PUSHER": "alice"}, trust={"local"}) == "alice"
    assert identity.pusher({"GITSWARM_PUSHER": "alice", "REMOTE_ADDR": "10.0.0.2"}, trust={"local"}) is None
    assert identity.pusher({"REMOTE_USER": " ", "GATEWAY_INTERFACE": "CGI/1.1", "GITSWARM_PUSHER": ""}) is None
    # behind a git server that runs every push as one account: the user it names, once trusted
    gitolite = {"SSH_CONNECTION": "1 2 3 4", "SSH_ORIGINAL_COMMAND": "git-receive-pack 'hub'", "GL_USER": "carol"}
    assert identity.transport(gitolite) == "gitolite"
    assert identity.pusher(gitolite, trust={"ssh"}) is None  # not the account: every user pushes as it
    assert identity.pusher(gitolite, trust={"gitolite"}) == "carol"
    assert identity.pusher(dict(gitolite, GITSWARM_PUSHER="dave"), trust={"ssh", "gitolite"}) == "carol"
    for server, variable in identity.SERVERS.items():  # Gitea, GitLab, soft-serve: written, not run here
        assert identity.pusher({variable: "erin"}, trust={server}) == "erin"
        assert identity.pusher({variable: "erin"}, trust={"local"}) is None
        assert identity.pusher({variable: " "}, trust={server}) is None
    assert identity.transport({"SSH_CONNECTION": "x"}) == "ssh"
    # over ssh without a forced command the client chose `GL_USER=x git-receive-pack`: the account
    assert identity.transport({"SSH_CONNECTION": "1 2 3 4", "GL_USER": "carol"}) == "ssh"
    assert identity.pusher({"SSH_CONNECTION": "1 2 3 4", "GL_USER": "carol"}, trust={"gitolite"}) == me
    assert identity.transport({"GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "x"}) == "http"
    assert identity.transport({"REMOTE_ADDR": "x"}) == "daemon"


def test_a_push_through_a_git_server_is_never_the_hubs_own(hub):
    """Gitea, GitLab (Gitaly) and soft-serve run every push as the account that owns the
    repositories, with no ssh, CGI or git daemon variable: their own variable tells them apart."""
    assert identity.hub_own(hub, {})
    for variable in identity.SERVERS.values():
        assert not identity.hub_own(hub, {variable: "erin"})


def test_init_leaves_the_pusher_env_unset_and_a_setting_is_read_from_the_hub(hub):
    assert sh("git", "config", "gitswarm.pusherEnv", cwd=hub, check=False).returncode == 1
    assert identity.trusted(hub) == set()
    sh("git", "config", "gitswarm.pusherEnv", "ssh, http", cwd=hub)
    assert identity.trusted(hub) == {"ssh", "http"}


def tasks_tip(hub: Path) -> str:
    return sh("git", "rev-parse", "tasks", cwd=hub).stdout.strip()


def as_(monkeypatch, who: str | None) -> None:
    """Push to a local hub as `who`: receive-pack inherits the pusher's environment on a path."""
    if who is None:
        monkeypatch.delenv("GITSWARM_PUSHER", raising=False)
    else:
        monkeypatch.setenv("GITSWARM_PUSHER", who)


def trust_local(hub: Path) -> None:
    """Let GITSWARM_PUSHER name the pusher of a local push: these tests play several people on
    one machine."""
    sh("git", "config", "gitswarm.pusherEnv", "local", cwd=hub)


def test_a_worker_cannot_act_for_a_name_bound_to_another_identity(hub, tmp_path, monkeypatch):
    trust_local(hub)
    url = str(hub)
    tid = gitswarm("task", "add", url, "--title", "Parse CSS").stdout.strip()
    as_(monkeypatch, "alice")
    assert gitswarm("claim", url, "--worker", "w1").stdout.strip() == tid
    as_(monkeypatch, None)
    other = gitswarm("task", "add", url, "--title", "Parse HTML").stdout.strip()
    assert identity.bindings(hub) == {"w1": "alice"}
    tip = tasks_tip(hub)
    for who in ("bob", None):  # another identity, or none at all
        as_(monkeypatch, who)
        for args in (("complete", url, tid, "--worker", "w1", "--summary", "mine now"),
                     ("release", url, tid, "--worker", "w1"),
                     ("claim", url, "--worker", "w1"),
                     ("heartbeat", url, "--worker", "w1")):
            refused = gitswarm(*args, check=False)
            assert refused.returncode == 2, (who, args, refused)
            assert f"worker w1 belongs to alice; this push comes from {who or 'an anonymous pusher'}" in refused.stderr
            assert "--id" in refused.stderr and "Traceback" not in refused.stderr
        assert tasks_tip(hub) == tip  # nothing landed
    assert identity.bindings(hub) == {"w1": "alice"}
    # bob under a name of his own is fine; alice completes her own claim
    as_(monkeypatch, "bob")
    assert gitswarm("claim", url, "--worker", "w2").stdout.strip() == other
    as_(monkeypatch, "alice")
    gitswarm("complete", url, tid, "--worker", "w1", "--summary", "done by alice")
    assert identity.bindings(hub) == {"w1": "alice", "w2": "bob"}
    listed = json.loads(gitswarm("pushers", str(hub), "--json").stdout)
    assert listed == {"pushers": {"w1": "alice", "w2": "bob"}}
    # each spooled event says who pushed it
    pushers = [e.pusher for e in events.pending(hub)]
    assert pushers[1:] == ["alice", None, "bob", "alice"], pushers


def test_anonymous_pushes_bind_nothing(hub, monkeypatch):
    as_(monkeypatch, None)
    url = str(hub)
    tid = gitswarm("task", "add", url, "--title", "Anything").stdout.strip()
    gitswarm("claim", url, "--worker", "w1")
    gitswarm("complete", url, tid, "--worker", "w1", "--summary", "ok")
    assert identity.bindings(hub) == {}
    assert "no worker is bound" in gitswarm("pushers", str(hub)).stdout


def test_two_identities_binding_one_name_at_once_leave_one_owner(hub):
    # the binding is created whole or not at all: the second finds the first's
    assert identity.bind(hub, ["w9"], "alice") == []
    lines = identity.bind(hub, ["w9"], "bob")
    assert lines and "worker w9 belongs to alice; this push comes from bob" in lines[0]
    assert identity.bindings(hub) == {"w9": "alice"}
    assert not [p for p in (hub / identity.PUSHERS).iterdir() if p.name.startswith(".")]  # no temp left
    # a name that is no plain file name is stored under its hash, never as a path
    assert identity.bind(hub, ["../../etc/x"], "carol") == []
    assert identity.bound(hub, "../../etc/x") == "carol"
    assert not (hub.parent / "etc").exists()


@pytest.fixture(params=["http", "ssh"])
def urls(request, hub: Path, tmp_path: Path, monkeypatch):
    """(alice's URL, bob's URL) of the hub over a transport that tells who pushed."""
    server, url_as = serve(request.param, hub, tmp_path, monkeypatch.setenv)
    pair = url_as("alice"), url_as("bob")
    try:
        yield pair
    finally:
        server.stop()


def test_identity_over_a_transport_that_authenticates(urls, hub, tmp_path):
    alice, bob = urls
    tid = gitswarm("task", "add", alice, "--title", "Parse CSS").stdout.strip()
    assert gitswarm("claim", alice, "--worker", "aw").stdout.strip() == tid
    stolen = gitswarm("complete", bob, tid, "--worker", "aw", "--summary", "not mine", check=False)
    assert stolen.returncode == 2, stolen
    assert "worker aw belongs to alice; this push comes from bob" in stolen.stderr, stolen.stderr
    assert "status: claimed" in sh("git", "show", f"tasks:tasks/{tid[2:4]}/{tid}.yaml", cwd=hub).stdout
    gitswarm("complete", alice, tid, "--worker", "aw", "--summary", "mine")
    assert identity.bindings(hub) == {"aw": "alice"}
    assert {e.pusher for e in events.pending(hub)} == {"alice"}


def test_ssh_without_a_forced_command_is_the_account(hub, tmp_path, monkeypatch):
    server, url_as = serve("ssh", hub, tmp_path, monkeypatch.setenv)
    try:
        url = url_as("plain")
        gitswarm("task", "add", url, "--title", "Anything")
        gitswarm("claim", url, "--worker", "pw")
        assert identity.bindings(hub) == {"pw": server.user}
    finally:
        server.stop()


def test_git_daemon_is_anonymous(hub, tmp_path, monkeypatch):
    server, url_as = serve("git", hub, tmp_path, monkeypatch.setenv)
    try:
        url = url_as()
        gitswarm("task", "add", url, "--title", "Anything")
        gitswarm("claim", url, "--worker", "dw")
        assert identity.bindings(hub) == {}
        assert {e.pusher for e in events.pending(hub)} == {None}
    finally:
        server.stop()


@pytest.mark.parametrize("shared, file_mode, dir_mode", [("group", 0o664, 0o2775), ("all", 0o664, 0o2775),
                                                         ("0640", 0o640, 0o2750), ("umask", None, None)])
def test_bindings_and_events_take_the_hubs_shared_mode(shared, file_mode, dir_mode, tmp_path):
    """core.sharedRepository as git reads it: the files the hooks create stay writable (or at least
    readable) by the group that shares the hub. (test_attacks_identity.py pushes as two accounts.)"""
    import stat

    from gitswarm.install import init

    hub = tmp_path / "shared.git"
    sh("git", "init", "-q", "--bare", f"--shared={shared}", str(hub))
    init(hub)
    old = os.umask(0o022)
    try:
        assert identity.bind(hub, ["w1"], "alice") == []
        spooled, = events.write(hub, [("0" * 40, "1" * 40, "refs/heads/main")])
    finally:
        os.umask(old)
    for path, want in ((hub / identity.PUSHERS / "w1", file_mode), (spooled, file_mode),
                       (hub / identity.PUSHERS, dir_mode), (hub / "gitswarm" / "spool", dir_mode)):
        mode = stat.S_IMODE(path.stat().st_mode)
        if want is None:  # left to the umask (022 here): nobody else may write
            assert not mode & 0o022, (path, oct(mode))
        else:
            assert mode == want, (path, oct(mode))


def test_the_hubs_settings_are_read_as_git_reads_them(hub):
    """Read from the config file as text (no git process on the push path): same values as git's."""
    from gitswarm.shared import setting

    for key, value in (("gitswarm.pusherEnv", "ssh, http"), ("gitswarm.other", "a # not a comment"),
                       ('remote.origin.url', "x")):
        sh("git", "config", key, value, cwd=hub)
    (hub / "config").write_text((hub / "config").read_text() + "[Core]\n\tSharedRepository = group ; why\n")
    for key in ("gitswarm.pusherEnv", "gitswarm.other", "core.sharedRepository", "core.bare", "gitswarm.none",
                "origin.url"):
        git_says = sh("git", "config", "--get", key, cwd=hub, check=False).stdout.strip() or None
        assert setting(hub, key) == git_says, key
