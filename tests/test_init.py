"""`gitswarm init`: new and existing repos, twice; foreign hooks kept and still run; refusals."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

import pytest

from gitswarm.board import Board
from gitswarm.task import new_task

from gitswarm import hookbuild
from gitswarm.errors import GitswarmError
from gitswarm.install import CLIENT_LINES, HOOKS, INTERPRETER, hook_script, init

from conftest import commit_all, gitswarm, push, sh


def snapshot(repo: Path) -> dict[str, str]:
    """Everything init may touch: hooks, config, refs, spool."""
    out = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and (rel.startswith(("hooks/", "refs/", "gitswarm/")) or rel in ("config", "HEAD", "packed-refs")):
            out[rel] = hashlib.sha1(path.read_bytes()).hexdigest() + oct(path.stat().st_mode)
    return out


def test_init_new_repo(tmp_path):
    hub = tmp_path / "hub.git"
    done = init(hub)
    assert any("created bare repository" in d for d in done)
    assert sh("git", "rev-parse", "--is-bare-repository", cwd=hub).stdout.strip() == "true"
    direct = os.access(hub / hookbuild.CLIENT, os.X_OK)  # init built the C client: the shims' interpreter
    for name in HOOKS:
        hook = hub / "hooks" / name
        text = hook.read_text()
        assert "gitswarm-hook:" in text
        assert text.startswith(INTERPRETER if direct else "#!/bin/sh\n")
        assert (sys.executable in text and "gitswarm.hookclient" in text) if name != "post-receive" \
            else "gitswarm/spool" in text and ("hookclient\" post-receive" in text) != direct
        assert text.rstrip().endswith(f'{name} "$@"') or name == "post-receive"
        assert hook.stat().st_mode & stat.S_IXUSR
    for key, value in [("receive.denyNonFastForwards", "true"), ("receive.denyDeletes", "true"),
                       ("receive.procReceiveRefs", "refs/for")]:
        assert sh("git", "config", key, cwd=hub).stdout.strip() == value
    assert (hub / "gitswarm" / "spool").is_dir()
    log = sh("git", "log", "--format=%s%n%b", "tasks", cwd=hub).stdout
    assert log.startswith("init board") and "Gitswarm-Action: init" in log
    readme = sh("git", "show", "tasks:README.md", cwd=hub).stdout
    assert "gitswarm task board" in readme


def test_init_twice_changes_nothing(tmp_path):
    hub = tmp_path / "hub.git"
    init(hub)
    before = snapshot(hub)
    assert init(hub) == []
    assert snapshot(hub) == before
    out = gitswarm("init", str(hub)).stdout
    assert "nothing to change" in out
    assert snapshot(hub) == before


def test_init_existing_repo_keeps_its_history(tmp_path):
    hub = tmp_path / "existing.git"
    sh("git", "init", "-q", "--bare", str(hub))
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    (work / "app.py").write_text("print('hi')\n")
    commit_all(work, "first commit")
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    main_before = sh("git", "rev-parse", "main", cwd=hub).stdout
    done = init(hub)
    assert not any("created bare repository" in d for d in done)
    assert "created branch tasks" in done
    assert sh("git", "rev-parse", "main", cwd=hub).stdout == main_before
    # tasks is its own history: no commit in common with main
    assert sh("git", "merge-base", "main", "tasks", cwd=hub, check=False).returncode == 1
    before = snapshot(hub)
    assert init(hub) == []
    assert snapshot(hub) == before


def _with_foreign_hook(tmp_path: Path, name: str, text: str) -> tuple[Path, Path]:
    """A bare repository (not a hub yet) with a hook of another's: (the repository, the hook)."""
    hub = tmp_path / "hub.git"
    sh("git", "init", "-q", "--bare", str(hub))
    foreign = hub / "hooks" / name
    foreign.write_text(text)
    foreign.chmod(0o755)
    return hub, foreign


@pytest.mark.parametrize("name", [h for h in HOOKS if h != "proc-receive"])
def test_foreign_hook_is_kept_and_still_runs(tmp_path, name):
    log = tmp_path / f"{name}.log"
    hub, foreign = _with_foreign_hook(tmp_path, name, f"#!/bin/sh\ncat >> {log}\necho 'foreign {name} ran'\n")
    done = init(hub)
    assert any(f"{name}.legacy" in d for d in done)
    assert (hub / "hooks" / f"{name}.legacy").read_text().startswith("#!/bin/sh\ncat >>")
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    commit_all(work, "hello")
    result = push(work, "HEAD:refs/heads/main")
    assert result.returncode == 0, result.stderr
    assert f"remote: foreign {name} ran" in result.stderr
    assert "refs/heads/main" in log.read_text()  # it got the same stdin
    # a second init leaves the legacy hook where it is
    assert init(hub) == []


def test_a_foreign_proc_receive_hook_is_kept_and_the_hub_does_not_apply(tmp_path):
    """proc-receive is one conversation with git: another's stays, and board pushes stay plain."""
    hub, foreign = _with_foreign_hook(tmp_path, "proc-receive", "#!/bin/sh\nexit 1\n")
    done = init(hub)
    assert any("kept the existing proc-receive hook" in d for d in done)
    assert foreign.read_text() == "#!/bin/sh\nexit 1\n"
    assert sh("git", "config", "receive.procReceiveRefs", cwd=hub, check=False).stdout == ""
    with Board(str(hub)) as board:  # the hub refuses refs/for/ (pre-receive): the board pushes plainly
        board.add([new_task("plain")])
        assert board.claim("alice") is not None and not board.mirror.applies


def test_foreign_pre_receive_can_still_refuse(tmp_path):
    _with_foreign_hook(tmp_path, "pre-receive", "#!/bin/sh\necho 'policy says no'\nexit 1\n")
    hub = tmp_path / "hub.git"
    init(hub)
    work = tmp_path / "work"
    sh("git", "clone", "-q", str(hub), str(work))
    commit_all(work, "hello")
    result = push(work, "HEAD:refs/heads/main")
    assert result.returncode != 0
    assert "remote: policy says no" in result.stderr


def test_refuses_core_hooks_path(tmp_path):
    hub = tmp_path / "hub.git"
    sh("git", "init", "-q", "--bare", str(hub))
    sh("git", "config", "core.hooksPath", "/somewhere/else", cwd=hub)
    with pytest.raises(GitswarmError) as e:
        init(hub)
    assert "core.hooksPath" in e.value.message and "--unset core.hooksPath" in e.value.hint
    assert not (hub / "hooks" / "pre-receive").exists()
    result = gitswarm("init", str(hub), check=False)
    assert result.returncode == 2
    assert "core.hooksPath" in result.stderr and "hint:" in result.stderr


def test_refuses_a_working_tree(tmp_path):
    work = tmp_path / "work"
    sh("git", "init", "-q", str(work))
    with pytest.raises(GitswarmError, match="not a bare git repository"):
        init(work)


def test_refuses_a_plain_folder_with_files(tmp_path):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(GitswarmError, match="not a bare git repository"):
        init(folder)
    assert os.listdir(folder) == ["notes.txt"]


@pytest.mark.parametrize("direct", [True, False], ids=["client-as-interpreter", "sh"])
def test_hook_shim_is_thin(hub, direct):
    for name in HOOKS:
        text = hook_script(name, direct=direct)
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        assert text.startswith(INTERPRETER if direct else "#!/bin/sh\n")
        client = [] if direct else lines[:2]  # sh starts the C client when it may run it
        if client:
            assert client[0].startswith(CLIENT_LINES) and client[0].endswith("&&")
            assert client[1].lstrip().startswith('exec "${GIT_DIR:-.}/gitswarm/hookclient" ')
        rest = lines[len(client):]
        if name in ("pre-receive", "proc-receive"):  # Python, when no guard answers or there is no client
            assert len(rest) == 1 and rest[0].startswith("exec ") and rest[0].endswith(f'{name} "$@"')
        else:  # a spool write in C when built, else in bash: no interpreter to start on every push
            assert len(rest) <= 12 and "python" not in "".join(rest).lower()
            assert rest[0].startswith("exec /bin/bash --norc -c '") and rest[-1] == "exit 0' post-receive \"$@\""


def forms(hub: Path) -> set[str]:
    return {"client" if (hub / "hooks" / n).read_text().startswith(INTERPRETER) else "sh" for n in HOOKS}


def test_the_client_is_the_interpreter_only_on_a_hub_that_is_its_owner_s_alone(tmp_path):
    """The kernel runs a shim's interpreter whoever owns it, with no `-O` test first: init makes the
    C client the interpreter only where no other account can put a program in its place; elsewhere
    sh starts first (and tests -O), and init says why. Each change of form is a second init's."""
    hub = tmp_path / "hub.git"
    init(hub)
    if not os.access(hub / hookbuild.CLIENT, os.X_OK):
        pytest.skip("init built no C client here (no compiler)")
    assert forms(hub) == {"client"}
    (hub / "gitswarm").chmod(0o775)
    done = init(hub)
    assert forms(hub) == {"sh"} and f"note: the hooks start a shell before the C client ({hub / 'gitswarm'} " \
        "is writable by other accounts than root): ~1 ms a hook".replace("root", (hub / "gitswarm").owner()) in done
    (hub / "gitswarm").chmod(0o755)
    assert any("installed the pre-receive hook" == line for line in init(hub)) and forms(hub) == {"client"}
    sh("git", "config", "core.sharedRepository", "group", cwd=hub)
    done = init(hub)
    assert forms(hub) == {"sh"} and any("the hub is shared (core.sharedRepository)" in line for line in done)
    sh("git", "config", "--unset", "core.sharedRepository", cwd=hub)
    for path in (hub, hub / "gitswarm", hub / hookbuild.CLIENT):
        path.chmod(0o755)
    init(hub)
    assert forms(hub) == {"client"}
    hub.chmod(0o777)
    assert forms(hub) == {"client"} and any("is writable by other accounts" in line for line in init(hub))
    assert forms(hub) == {"sh"}


def test_hooks_dir_takes_the_shims_and_leaves_the_repository_hooks_alone(tmp_path):
    """For a git server that runs hooks from a folder of its own (gitolite's repo-specific hooks:
    tests/test_gitolite.py runs them for real)."""
    hub, folder = tmp_path / "hub.git", tmp_path / "server" / "hooks" / "gitswarm"
    done = gitswarm("init", str(hub), "--hooks-dir", str(folder)).stdout
    assert f"installed the pre-receive hook as {folder / 'pre-receive'}" in done
    for name in HOOKS:  # started by the server from its folder, in any folder: sh first, as its path is relative
        assert "gitswarm-hook:" in (folder / name).read_text() and os.access(folder / name, os.X_OK)
        assert (folder / name).read_text().startswith("#!/bin/sh\n")
        assert not (hub / "hooks" / name).exists()
    assert "already a gitswarm hub" in gitswarm("init", str(hub), "--hooks-dir", str(folder)).stdout
    (folder / "post-receive").write_text("#!/bin/sh\necho someone else's\n")
    refused = gitswarm("init", str(hub), "--hooks-dir", str(folder), check=False)
    assert refused.returncode == 2 and "is not gitswarm's hook" in refused.stderr, refused.stderr
    assert (folder / "post-receive").read_text() == "#!/bin/sh\necho someone else's\n"


DISPATCHER = """#!/bin/sh
# as Gitea, Forgejo and soft-serve write hooks/<name>: run every file of hooks/<name>.d/
hookname=$(basename "$0")
data=$(cat)
for hook in "${GIT_DIR:-.}/hooks/${hookname}.d"/*; do
  [ -x "$hook" ] || continue
  printf '%s\\n' "$data" | "$hook" || exit 1
done
"""


def test_a_servers_dispatcher_keeps_its_place_and_gitswarm_joins_its_folder(tmp_path):
    """A hub whose hooks/pre-receive runs hooks/pre-receive.d/* (Gitea, Forgejo, soft-serve, which
    write that file back): the shims go into that folder, the server's own hook keeps running."""
    hub = tmp_path / "hub.git"
    sh("git", "init", "-q", "--bare", str(hub))
    for name in HOOKS:
        (hub / "hooks" / name).write_text(DISPATCHER)
        (hub / "hooks" / name).chmod(0o755)
        (hub / "hooks" / f"{name}.d").mkdir()
    server = hub / "hooks" / "pre-receive.d" / "00-server"  # the server's own check (Gitea's: gitea)
    server.write_text("#!/bin/sh\necho 'server: checked'\n")
    server.chmod(0o755)
    done = init(hub)
    assert f"installed the pre-receive hook as {hub / 'hooks' / 'pre-receive.d' / 'gitswarm'}" in done
    assert (hub / "hooks" / "pre-receive").read_text() == DISPATCHER  # untouched, no .legacy
    assert not (hub / "hooks" / "pre-receive.legacy").exists()
    assert init(hub) == []
    work = tmp_path / "work"
    sh("git", "clone", "-q", "--branch", "tasks", str(hub), str(work))
    (work / "stray.txt").write_text("not a task")
    commit_all(work, "a stray file")
    result = push(work, "HEAD:refs/heads/tasks")
    assert result.returncode != 0
    assert "remote: server: checked" in result.stderr and "remote: gitswarm: rejected" in result.stderr, result.stderr
    push_main = push(work, "HEAD~1:refs/heads/main")  # a good push: post-receive.d/gitswarm spools it
    assert push_main.returncode == 0, push_main.stderr
    from gitswarm import events

    assert [e.ref for e in events.pending(hub)] == ["refs/heads/main"]
