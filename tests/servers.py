"""Real git transports on loopback for the tests: `git daemon` (git://) and a tiny HTTP server that
runs `git http-backend` as a CGI for every request (smart http://). Nothing of git is mocked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 10) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never accepted")


class GitDaemon:
    """`git daemon` serving every repository under root, with push enabled."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={root}", "--export-all", "--enable=receive-pack",
             "--listen=127.0.0.1", f"--port={self.port}", str(root)],
            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        wait_port(self.port, self.proc)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()  # the CRLF after each chunk
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _CGIHandler(BaseHTTPRequestHandler):
    root: Path

    def log_message(self, *args) -> None:  # quiet
        pass

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = _read_body(self) if self.command == "POST" else b""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update({
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "tester", "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.0", "GATEWAY_INTERFACE": "CGI/1.1",
        })
        for name in ("Content-Encoding", "Git-Protocol"):  # gzip'd requests; protocol v2
            if name in self.headers:
                env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
        proc = subprocess.run([HTTP_BACKEND], input=body, capture_output=True, env=env, cwd=self.root)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        if not sep:  # no CGI output at all: the backend failed
            status, headers, payload = 500, [("Content-Type", "text/plain")], proc.stderr
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _cgi


class GitHTTP:
    """Smart HTTP: `git http-backend` as a CGI behind http.server, serving every repository under root."""

    def __init__(self, root: Path):
        self.root = root
        handler = type("Handler", (_CGIHandler,), {"root": root})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        wait_port(self.port)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
