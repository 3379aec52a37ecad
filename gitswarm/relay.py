"""The relay: inside a sandbox without network, the one door to the model.

    python -m gitswarm.relay --listen 127.0.0.1:PORT --socket PATH -- ARGV...

bubblewrap's `--unshare-net` leaves the sandbox a loopback interface of its own (up) and nothing
else. The relay listens there on 127.0.0.1:PORT, passes every connection to the unix socket PATH
(the meter's, bound into the sandbox), and runs ARGV: the agent reaches `http://127.0.0.1:PORT/v1`
as it would outside, and nothing else. It listens before it starts the child, and exits with the
child's exit status (128+n when a signal n killed it); SIGTERM, SIGINT and SIGHUP are passed on.

Pure standard library and no import of gitswarm: the sandbox runs this file by its path with the
Python running gitswarm, whatever way gitswarm is installed.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until its end; then say so to the other side."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
        try:
            sock.shutdown(how)
        except OSError:
            pass


def _join(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError as e:
        print(f"gitswarm relay: cannot reach the model proxy at {path}: {e}", file=sys.stderr)
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_join, args=(client, path), daemon=True).start()


def listen(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)
    return listener


def exit_status(code: int) -> int:
    """A child's status as a shell gives it: its exit code, or 128+n when signal n killed it."""
    return 128 - code if code < 0 else code


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gitswarm.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--socket", required=True, help="the meter's unix socket")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- the command to run")
    options = parser.parse_args(args)
    argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
    if not argv:
        parser.error("give the command to run after --")
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is None:
            sys.exit(128 + signum)
        child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    try:
        listener = listen(options.listen)
    except (OSError, ValueError) as e:
        print(f"gitswarm relay: cannot listen on {options.listen}: {e}", file=sys.stderr)
        return 70  # EX_SOFTWARE
    threading.Thread(target=_serve, args=(listener, options.socket), daemon=True).start()
    try:  # not gitswarm/proc.py: ARGV stays in our group (the sandbox ends it whole) and on our stdio
        child = subprocess.Popen(argv)
    except OSError as e:
        print(f"gitswarm relay: cannot run {argv[0]}: {e}", file=sys.stderr)
        return 127
    while True:
        try:
            return exit_status(child.wait())
        except InterruptedError:
            continue


if __name__ == "__main__":
    sys.exit(main())
