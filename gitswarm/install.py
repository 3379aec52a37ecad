"""`gitswarm init`: make a bare repository a hub. Hooks, settings, the `tasks` branch, the spool.
Safe to run again: a second run changes nothing."""

from __future__ import annotations

import os
import shlex
import sys
from importlib import resources
from pathlib import Path

from . import git, hookbuild, names
from .errors import GitswarmError
from .events import spool_dir
from .shared import make_dirs

HOOKS = ("pre-receive", "proc-receive", "post-receive")
MARKER = "gitswarm-hook:"
SETTINGS = {
    "receive.denyNonFastForwards": "true",
    "receive.denyDeletes": "true",
    "core.logAllRefUpdates": "always",  # the server's own record of when each ref moved
    "receive.fsckObjects": "true",  # refuse malformed objects (a `.GIT/config` tree entry) before any hook
    # no `git gc --auto` process after every push (~1.5 ms of it): post-receive starts it when due
    "receive.autoGC": "false",
}
APPLY_SETTING = ("receive.procReceiveRefs", names.APPLY.rstrip("/"))  # board pushes the hub applies (applier.py)
BOARD_AUTHOR = ("gitswarm", "gitswarm@localhost")
# The C client as a shim's interpreter, relative: git runs push hooks in the hub (githooks(5)).
INTERPRETER = f"#!{hookbuild.CLIENT} --shim\n"
CLIENT_LINES = '[ -x "${GIT_DIR:-.}/gitswarm/hookclient" ]'  # a shim's two lines that start the client from sh
NO_CLIENT = "no C client"  # interpreter_refused's answer where init built none: nothing to say


def resource_dir(package: str, source_folder: str) -> Path:
    """A folder shipped in the package (installed), or at the top of a source checkout."""
    try:
        return Path(str(resources.files(package)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / source_folder


def hook_script(name: str, direct: bool = False) -> str:
    """The shim for a hook, with this interpreter and the folders it imports gitswarm and PyYAML
    from recorded (the hook runs Python with -I -S, skipping site initialisation: ~10-20 ms a push).
    `direct`: the C client its interpreter (INTERPRETER), the lines that start it from sh left out."""
    import yaml

    import gitswarm

    paths = list(dict.fromkeys(str(Path(m.__file__).resolve().parent.parent) for m in (gitswarm, yaml)))
    program = (f"import sys; sys.path[:0] = {paths!r}; "
               "from gitswarm.hookclient import main; sys.exit(main())")
    from .identity import VARIABLES

    template = (resource_dir("gitswarm.hooks", "hooks") / name).read_text()
    text = template.replace("@PYTHON@", shlex.quote(sys.executable)).replace("@PROGRAM@", shlex.quote(program)) \
        .replace("@PUSHER_VARIABLES@", " ".join(VARIABLES))
    if not direct:
        return text
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(CLIENT_LINES))
    return INTERPRETER + "".join(lines[1:at] + lines[at + 2:])


def interpreter_refused(repo: Path) -> str | None:
    """Why the hub's C client may not be its shims' interpreter, None when it may. The kernel runs an
    interpreter whoever owns it, with no `-O` test before: only on a hub that is its owner's alone
    (not shared, the hub, gitswarm/ and the client writable by this account only: nobody else can
    put a program there), and only a client init built and can run."""
    from .shared import file_mode

    client = repo / hookbuild.CLIENT
    if not os.access(client, os.X_OK):
        return NO_CLIENT
    if file_mode(repo, 0o644) is not None:
        return "the hub is shared (core.sharedRepository)"
    for path in (repo, client.parent, client):
        st = os.lstat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return f"{path} is writable by other accounts than {path.owner()}" if st.st_mode & 0o022 \
                else f"{path} belongs to another account"
    return None


def board_readme() -> bytes:
    return (resource_dir("gitswarm.schema", "tasks") / "BOARD.md").read_bytes()


def _not_bare_hint(repo: Path) -> str:
    """What to do instead of making `repo` (not bare) a hub: a clone names its hub."""
    from .remotes import hub_of_clone

    hub = hub_of_clone(repo)
    if hub is not None:
        return (f"{repo} is a clone of {hub}: run `gitswarm init {hub}` where that lives, if it is not a hub "
                f"yet; `gitswarm status` in the clone reads its board")
    return f"give a bare repository (git init --bare {repo.name}) or a new path"


def init(path: str | Path, hooks_dir: str | Path | None = None) -> list[str]:
    """Make `path` (new or an existing bare repository) a gitswarm hub. Returns what was done.
    `hooks_dir`: write the hook shims there instead of into the repository's hooks/, for a git
    server that runs them from its own folder (gitolite's repo-specific hooks, docs/hosting.md)."""
    repo = Path(path).expanduser().resolve()
    done: list[str] = []
    if not repo.exists() or (repo.is_dir() and not any(repo.iterdir())):
        git.run(["init", "-q", "--bare", "--initial-branch=main", str(repo)])
        done.append(f"created bare repository {repo}")
    elif git.run(["rev-parse", "--is-bare-repository"], cwd=repo, check=False).stdout.strip() != b"true":
        raise GitswarmError(f"{repo} is not a bare git repository", _not_bare_hint(repo))
    hooks_path = git.run(["config", "core.hooksPath"], cwd=repo, check=False).stdout.decode().strip()
    if hooks_path:
        raise GitswarmError(f"{repo}: core.hooksPath is set ({hooks_path}), so git would not run "
                            "gitswarm's hooks",
                            f"unset it (git -C {repo} config --unset core.hooksPath, or --global) "
                            "and run gitswarm init again")
    if hooks_dir is None:
        _refuse_managed_hooks(repo)
    if not spool_dir(repo).is_dir():
        make_dirs(spool_dir(repo), repo)
        done.append(f"created the event spool {spool_dir(repo)}")
    # the client before the shims: a new shim may ask it for what an older build cannot do
    done += hookbuild.build(repo, resource_dir("gitswarm.hooks", "hooks") / "hookclient.c")
    done += install_hooks(repo, None if hooks_dir is None else Path(hooks_dir).expanduser().resolve())
    settings = dict(SETTINGS)
    if hooks_dir is None and MARKER in _read(repo / "hooks" / "proc-receive"):
        # the hub applies board pushes; not where a server runs hooks from a folder of its own
        # (gitolite may not run proc-receive), nor where a proc-receive hook of another's is kept
        settings[APPLY_SETTING[0]] = APPLY_SETTING[1]
    for key, value in settings.items():
        current = git.run(["config", "--local", key], cwd=repo, check=False).stdout.decode().strip()
        if current != value:
            git.run(["config", "--local", key, value], cwd=repo)
            done.append(f"set {key}={value}")
    if git.run(["rev-parse", "-q", "--verify", names.BOARD], cwd=repo, check=False).returncode:
        _create_board(repo)
        done.append("created branch tasks")
    return done + _share(repo)


def _share(repo: Path) -> list[str]:
    """On a hub shared by a group (core.sharedRepository), give what this account made in
    gitswarm/ (spool, bindings) and the object folders libgit2 made (it ignores the setting) the
    shared modes, so that every member's push can write there. Run again after changing it."""
    from .shared import adjust, file_mode

    if file_mode(repo, 0o644) is None:
        return []
    made = [p for p in (repo / "gitswarm").rglob("*") if p != repo / hookbuild.CLIENT] + [repo / "gitswarm"]
    made += [p for p in (repo / "objects").iterdir() if len(p.name) == 2 and p.is_dir()]
    changed = 0
    for path in made:
        before = path.stat()
        if before.st_uid == os.getuid():
            adjust(path, repo)
            changed += path.stat().st_mode != before.st_mode
    return [f"gave {changed} files and folders the modes core.sharedRepository asks for"] if changed else []


def _refuse_managed_hooks(repo: Path) -> None:
    """gitolite's repo-specific hooks make hooks/pre-receive a link to its multi-hook driver and
    put it back at every compile: gitswarm's shims go into gitolite's folder instead."""
    for name in HOOKS:
        hook = repo / "hooks" / name
        if hook.is_symlink() and os.readlink(hook).endswith("multi-hook-driver"):
            raise GitswarmError(f"{hook} is gitolite's multi-hook driver: gitolite runs this repository's "
                                "hooks from its own folder and would undo any change here",
                                f"gitswarm init {repo} --hooks-dir ~/local/hooks/repo-specific/gitswarm, then "
                                "name gitswarm/pre-receive and gitswarm/post-receive in gitolite.conf "
                                "(docs/hosting.md, gitolite)")


def _dispatched(folder: Path, name: str) -> Path | None:
    """Where the shim goes when hooks/<name> is a server's dispatcher that runs every file of
    hooks/<name>.d/ (Gitea, Forgejo, soft-serve write one and put it back): a file of that folder."""
    hook, parts = folder / name, folder / f"{name}.d"
    if not (parts.is_dir() and hook.is_file()):
        return None
    text = hook.read_text(errors="replace")
    return parts / "gitswarm" if MARKER not in text and ("${hookname}.d" in text or f"{name}.d" in text) else None


def shims_broken(repo: Path) -> str | None:
    """What stops every push when the shims' interpreter cannot run (git then says only "cannot run
    hooks/pre-receive"), None when nothing does: `serve` says it when it starts."""
    client = repo / hookbuild.CLIENT
    direct = [name for name in HOOKS if _read(repo / "hooks" / name).startswith(INTERPRETER)]
    if not direct or os.access(client, os.X_OK):
        return None
    return (f"{client} is missing or cannot run, and it is the interpreter of hooks/{', hooks/'.join(direct)}: "
            f"git refuses every push (\"cannot run hooks/{direct[0]}\"); run `gitswarm init {repo}`: it builds "
            "the client again, or writes shims that do without it")


def install_hooks(repo: Path, hooks_dir: Path | None = None, direct: bool = True) -> list[str]:
    """The shims into hooks/ (or `hooks_dir`); the C client their interpreter where it may be
    (`direct` and interpreter_refused), else a shell runs them first (~1 ms a hook)."""
    done = []
    folder = repo / "hooks" if hooks_dir is None else hooks_dir
    folder.mkdir(parents=hooks_dir is not None, exist_ok=True)
    refused = interpreter_refused(repo) if direct else None
    for name in HOOKS:
        target = folder / name if hooks_dir is not None else (_dispatched(folder, name) or folder / name)
        script = hook_script(name, direct=direct and refused is None and target == repo / "hooks" / name)
        if target.exists():
            current = target.read_text(errors="replace")
            if current == script:
                continue
            if name == "proc-receive" and MARKER not in current:  # one conversation with git: not shared
                done.append(f"kept the existing {name} hook (note: so the hub does not apply board pushes "
                            "in order; they are plain pushes)")
                continue
            if MARKER not in current and target != repo / "hooks" / name:
                raise GitswarmError(f"{target} exists and is not gitswarm's hook",
                                    f"move it away, or give --hooks-dir a folder of gitswarm's own (it writes "
                                    f"pre-receive and post-receive there), then run gitswarm init again")
            if MARKER not in current:
                legacy = folder / f"{name}.legacy"
                if legacy.exists():
                    raise GitswarmError(f"{target} is not gitswarm's and {legacy.name} exists too",
                                        "merge or remove one of them, then run gitswarm init again")
                os.rename(target, legacy)
                done.append(f"kept the existing {name} hook as {legacy.name}; it still runs")
        tmp = target.parent / f".{name}.tmp"
        tmp.write_text(script)
        tmp.chmod(0o755)
        os.rename(tmp, target)
        done.append(f"installed the {name} hook" + ("" if target == repo / "hooks" / name else f" as {target}"))
    if done and refused not in (None, NO_CLIENT):  # said when the shims are written, not every run
        done.append(f"note: the hooks start a shell before the C client ({refused}): ~1 ms a hook")
    return done


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _create_board(repo: Path) -> None:
    import pygit2

    from .rules import message

    handle = pygit2.Repository(str(repo))
    try:
        msg = message("init", [], body="The task board: one YAML file per task under tasks/.")
        sha = git.write_commit(handle, None, {"README.md": board_readme()}, msg, BOARD_AUTHOR)
    finally:
        handle.free()
    git.run(["update-ref", "-m", "gitswarm init", names.BOARD, sha, git.ZERO], cwd=repo)
