"""What the hook shims in hooks/ run first: hand the push to the hub's resident guard
(gitswarm/guardserver.py) over `<hub>/gitswarm/guard.sock`, or check it here (gitswarm/hookimpl.py)
when there is none.

Every push waits for this process, so it imports nothing but `_socket` (the `socket` module would
cost ~6 ms: it imports enum) until it has to check in process. The guard gets this hook's stdin,
its whole environment (the quarantine's GIT_* variables, the pusher's transport variables, push
options), its folder and umask, and this process's stdout and stderr to print to; it answers
`exit <code>`. Anything else is no answer: the socket missing, refusing, owned by another account,
the guard dying before it answers (a half answer), or taking longer than ANSWER_SECONDS. Then the
push is checked here, as if no guard ran. Never accepted unchecked.

proc-receive (gitswarm/applier.py) is a conversation with git on stdin and stdout, not a read of
stdin: the guard gets this process's stdin and stdout themselves and no data. It is applied here
only when the guard could not be asked; once asked, a guard that dies before it answers fails the
push (git reports that the proc-receive hook failed; the pusher pushes again).
"""

from __future__ import annotations

import os
import sys

SOCKET = os.path.join("gitswarm", "guard.sock")  # inside the hub
MAGIC = b"gitswarm-guard-1"
CONNECT_SECONDS = 5.0
ANSWER_SECONDS = 300.0  # git has no hook timeout; a wedged guard must not hold a push for ever


LIVE = "proc-receive"  # the hook whose stdin and stdout the guard takes over


def request(name: str, data: bytes) -> bytes:
    """The bytes the guard reads: `<length of head>:` then the head (name, folder, umask, number of
    variables, the variables as `KEY=VALUE`, each ended by NUL), then this hook's stdin whole."""
    mask = os.umask(0o022)
    os.umask(mask)
    env = [k + b"=" + v for k, v in os.environb.items()]
    head = b"\0".join([name.encode(), os.getcwdb(), b"%o" % mask, b"%d" % len(env), *env]) + b"\0"
    return b"%s %d:" % (MAGIC, len(head)) + head + data


def ask_guard(name: str, data: bytes, git_dir: str) -> int | None:
    """The guard's exit code for this hook, or None when there is no whole answer to be had (for
    LIVE: when the guard could not be asked; a guard asked that gives no whole answer fails it)."""
    try:
        owner = os.stat(git_dir).st_uid
    except OSError:
        return None
    if owner != os.getuid():  # another account's push: the guard (the hub owner's) will not take it
        return None
    import _socket

    if not hasattr(_socket, "SO_PEERCRED"):  # not Linux: no way to tell who listens
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    asked = False
    try:
        sock.settimeout(CONNECT_SECONDS)
        sock.connect(os.path.join(git_dir, SOCKET))
        creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # pid, uid, gid
        if int.from_bytes(creds[4:8], sys.byteorder) != owner:  # a socket planted by another account
            return None
        payload = request(name, data)
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in ((0, 1, 2) if name == LIVE else (1, 2)))
        sent = sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        asked = name == LIVE
        if sent < len(payload):
            sock.sendall(payload[sent:])
        sock.shutdown(_socket.SHUT_WR)
        sock.settimeout(ANSWER_SECONDS)
        answer = b""
        while len(answer) < 64 and not answer.endswith(b"\n"):  # the line is the whole answer: no wait
            chunk = sock.recv(64)  # for the guard's child to exit
            if not chunk:
                break
            answer += chunk
    except OSError:  # no socket, refused (a guard that died), reset mid-push, timed out
        answer = b""
    finally:
        sock.close()
    if not (answer.startswith(b"exit ") and answer.endswith(b"\n") and answer[5:-1].isdigit()):
        if asked:  # it took git's conversation: it cannot be had again here
            os.write(2, b"gitswarm: the hub's guard died during the push; push again\n")
            return 1
        return None  # a half answer: the guard died or broke before it finished
    return int(answer[5:-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv else ""
    data = b"" if name == LIVE else sys.stdin.buffer.read()
    code = ask_guard(name, data, os.environ.get("GIT_DIR", "."))
    if code is not None:
        return code
    from .hookimpl import main as check_here

    return check_here(argv, None if name == LIVE else data)


if __name__ == "__main__":
    sys.exit(main())
