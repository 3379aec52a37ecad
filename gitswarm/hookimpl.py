"""What a hook does, in whichever process checks it: the shim's own (gitswarm/hookclient.py, when
no resident guard answers) or a child of the resident guard (gitswarm/guardserver.py).

pre-receive: the previous hook (kept as <name>.legacy by `gitswarm init`) first, then the guard
(heartbeat refs, the goal files and settings pushed to main (gitswarm/check.py), the board's
rules, goal records only from the hub's own pushes), then the
pusher's identity against the workers the push acts for (gitswarm/identity.py).
proc-receive: apply pushes to refs/for/<ref> (gitswarm/applier.py), checked as pre-receive checks.
post-receive (only for hubs whose shims predate hooks/post-receive in bash, which spools a push
record without Python: gitswarm/events.py): spool one event per updated ref, with who pushed it,
and return at once; never fails the push.
Imports stay lazy: every push pays for this process's start-up.
"""

from __future__ import annotations

import os
import sys


def _legacy(git_dir: str, name: str, data: bytes) -> int:
    path = os.path.join(git_dir, "hooks", f"{name}.legacy")
    if not os.access(path, os.X_OK):
        return 0
    from .proc import run_killable

    # its output reaches the pusher as ours does; what it leaves running (a notifier) runs on
    return run_killable([path], stdin=data, capture=False, leftovers=False).code


def _updates(data: bytes) -> list[tuple[str, str, str]]:
    lines = (line.split(" ", 2) for line in data.decode("utf-8", errors="replace").splitlines())
    return [(p[0], p[1], p[2]) for p in lines if len(p) == 3]


def _check_main(updates: list[tuple[str, str, str]], repo) -> list[str]:
    """The goal files, settings and prompts a push changes on main (gitswarm/check.py), its
    validators imported only when there are any: a landing of work pays one `git diff-tree`."""
    from .git import ZERO
    from .names import MAIN
    from .workrules import protected

    changed = [(path, blob, mode) for old, new, ref in updates if ref == MAIN and new != ZERO
               for _, _, blob, path, mode in repo.diff(None if old == ZERO else old, new) if protected(path)]
    if not changed:
        return []
    from .check import check_changes

    return check_changes(changed, repo)


def check(updates: list[tuple[str, str, str]], git_dir: str, applied: bool = False, repo=None) -> list[str]:
    """The guard's checks of a push's (old, new, ref) updates: the lines of its refusal, or [].
    Updates of refs/for/<ref> are the proc-receive hook's to check (gitswarm/applier.py), on the
    tips it applies them to (`applied`: this is that check); pre-receive lets them by only when
    the hub applies them (receive.procReceiveRefs). `repo`: a HookRepo to read through (the
    applier's), left open; else one of its own."""
    from .names import APPLY

    if not applied and any(ref.startswith(APPLY) for _, _, ref in updates):
        from .shared import setting

        if setting(git_dir, "receive.procReceiveRefs") != APPLY.rstrip("/"):
            return [f"gitswarm: rejected {APPLY}: this hub does not apply pushes (receive.procReceiveRefs is not "
                    f"{APPLY.rstrip('/')})", "gitswarm: hint: push to the refs themselves, or run `gitswarm init` "
                    "on the hub to update it"]
        updates = [u for u in updates if not u[2].startswith(APPLY)]
        if not updates:  # a board push the hub applies: proc-receive checks it, on the tips it applies to
            return []
    from . import identity
    from .errors import GitswarmError
    from .githook import reader
    from .guard import check_heartbeats, check_updates, stale

    own, actors = repo is None, set()
    repo = repo or reader()
    try:
        who = identity.pusher(git_dir=git_dir)
        return (stale(updates, repo) or check_heartbeats(updates, repo) or _check_main(updates, repo)
                or check_updates(updates, repo, actors, hub_own=identity.hub_own(git_dir),
                                 bound=lambda worker: identity.bound(git_dir, worker), pusher=who)
                or identity.bind(git_dir, actors, who))
    except GitswarmError as e:  # the hub's own setup is wrong (a setting): say which, and how to fix it
        return [f"gitswarm: rejected: {e.message}"] + ([f"gitswarm: hint: {e.hint}"] if e.hint else [])
    except Exception as e:  # a bug must not let a push through unchecked: refuse, and say why
        return [f"gitswarm: internal error in the guard, push refused: {type(e).__name__}: {e}"]
    finally:
        if own:
            repo.close()


WARM_FILES = 4  # task files a spare parses: the code's first run is the point, not the board (a commit adding
# 1,000 tasks made each spare parse them all, and a push that found no spare ready waited ~150 ms)


def warm() -> None:
    """Read the board (this process's GIT_DIR) as a check reads it, changing nothing: the tip of `tasks`, its last commit's
    changes, a few task files it wrote, parsed, and its trailers. The resident guard's spare children
    run this while they wait for a push (gitswarm/guardserver.py): a forked child pays for the
    memory it first touches and the code it first runs (~2 ms a board push), and pays it here."""
    from . import names, rules, task as T
    from .githook import reader

    repo = reader()
    try:
        tip = repo.ref(names.BOARD)
        if tip is None:
            return
        for _, _, blob, path, _ in repo.changes([(tip, (repo.parents(tip) or [])[:1])])[tip][:WARM_FILES]:
            try:
                T.parse(repo.read(blob) or b"", path)
            except Exception:  # not a task file, or a bad one: it was read all the same
                pass
        rules.parse_trailers((repo.read(tip) or b"").decode("utf-8", "replace"))
    finally:
        repo.close()


def main(argv: list[str] | None = None, data: bytes | None = None) -> int:
    """Run hook argv[0] on `data` (None: read this process's stdin), in this process."""
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv else ""
    git_dir = os.environ.get("GIT_DIR", ".")
    if name == "proc-receive":  # a conversation on stdin and stdout, not a read of stdin
        from .applier import converse

        return converse(lambda updates, repo: check(updates, git_dir, applied=True, repo=repo))
    data = sys.stdin.buffer.read() if data is None else data
    if name == "pre-receive":
        code = _legacy(git_dir, name, data)
        if code:
            return code
        problems = check(_updates(data), git_dir)
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    if name == "post-receive":
        from . import events

        try:
            from .identity import pusher
            from .names import GITSWARM

            events.write(git_dir, [u for u in _updates(data) if not u[2].startswith(GITSWARM)],
                         pusher=pusher(git_dir=git_dir))
        except Exception as e:  # the push has landed; say what went wrong, never fail it
            print(f"gitswarm: could not spool the event: {e}", file=sys.stderr)
        _legacy(git_dir, name, data)
        return 0
    print(f"gitswarm: unknown hook {name!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
