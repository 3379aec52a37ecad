"""Real git transports on loopback for the tests: `git daemon` (git://), a tiny HTTP server that
runs `git http-backend` as a CGI for every request (smart http://), openssh's sshd, and gitolite
behind sshd. Nothing of git is mocked."""

from __future__ import annotations

import base64
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
    require_auth: bool

    def log_message(self, *args) -> None:  # quiet
        pass

    def _cgi(self) -> None:
        user = self._user()
        if user is None and self.require_auth:  # as a web server asks: git then sends the URL's credentials
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="gitswarm hub"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = _read_body(self) if self.command == "POST" else b""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update({
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.0", "GATEWAY_INTERFACE": "CGI/1.1",
        })
        if user:
            env["REMOTE_USER"] = user
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

    def _user(self) -> str | None:
        """The Basic-auth user. Any password passes: a real server checks it (docs/serving.md)."""
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        return base64.b64decode(value).decode().partition(":")[0] or None


class GitHTTP:
    """Smart HTTP: `git http-backend` as a CGI behind http.server, serving every repository under root.
    With require_auth, every request needs Basic auth, whose user reaches git as REMOTE_USER."""

    def __init__(self, root: Path, require_auth: bool = False):
        self.root = root
        handler = type("Handler", (_CGIHandler,), {"root": root, "require_auth": require_auth})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        wait_port(self.port)

    def url(self, name: str, user: str | None = None) -> str:
        return f"http://{user + ':secret@' if user else ''}127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


SSHD = "/usr/sbin/sshd"


def keygen(path: Path, comment: str = "") -> str:
    """A new ed25519 key at `path` (private) and `path`.pub; returns the public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", *(["-C", comment] if comment else []),
                    "-f", str(path)], check=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def client_host(name: str, port: int, user: str, key: Path) -> str:
    """An ssh_config block: host `name` is the loopback sshd on `port`, as `user`, with `key` only."""
    return (f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
            f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n")


def start_sshd(folder: Path, port: int, authorized_keys: Path, extra: str = "") -> subprocess.Popen:
    """openssh's sshd on 127.0.0.1:`port`, keys only, its host key and config in `folder`."""
    host_key = folder / "host_key"
    keygen(host_key)
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized_keys}\nStrictModes no\nUsePAM no\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"PermitRootLogin prohibit-password\nPidFile {folder / 'sshd.pid'}\n{extra}")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_port(port, proc)
    return proc


class SSHServer:
    """openssh's sshd on loopback, for the current user, with one key per identity. Each key logs in
    through a forced command, as a hub's admin sets it up (docs/serving.md): `git-shell` runs the
    git command the client asked for, with GITSWARM_PUSHER naming the key's owner. A key named
    "plain" has no forced command: its pushes come as the account itself.

    Clients use `ssh -F <config>` (GIT_SSH_COMMAND in `env()`), and reach the server as host
    `<identity>`: ssh://alice/<path>."""

    def __init__(self, root: Path, identities: tuple[str, ...] = ("alice", "bob", "plain")):
        import getpass

        self.dir = root / "sshd"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.user = getpass.getuser()
        authorized, hosts = [], []
        for who in identities:
            key = self.dir / f"id_{who}"
            public = keygen(key, who)
            if who == "plain":
                authorized.append(public)
            else:
                authorized.append(f'command="GITSWARM_PUSHER={who} exec git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"",'
                                  f"no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-pty {public}")
            hosts.append(client_host(who, self.port, self.user, key))
        (self.dir / "authorized_keys").write_text("\n".join(authorized) + "\n")
        (self.dir / "ssh_config").write_text("".join(hosts))
        self.proc = start_sshd(self.dir, self.port, self.dir / "authorized_keys")

    def env(self, multiplex: bool = False) -> dict[str, str]:
        """With multiplex, ssh keeps one connection open and runs each git command over it
        (ControlMaster), as docs/serving.md advises for workers that poll."""
        mux = f" -o ControlMaster=auto -o ControlPath={self.dir}/cm-%C -o ControlPersist=60" if multiplex else ""
        return {"GIT_SSH_COMMAND": f"ssh -F {self.dir / 'ssh_config'}{mux}"}

    def url(self, path: Path, who: str = "alice") -> str:
        return f"ssh://{who}{path}"

    def stop(self) -> None:
        for master in self.dir.glob("cm-*"):  # multiplexing masters left running
            subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "exit", "x"], capture_output=True)
        GitDaemon.stop(self)  # type: ignore[arg-type]


GITOLITE = "/usr/bin/gitolite"


class Gitolite:
    """gitolite3 (Debian's package) behind openssh's sshd on loopback, set up as docs/hosting.md
    says: the account's home (HOME=root/gitolite; the account is the test's own, root) holds
    ~/.gitolite.rc with repo-specific hooks and LOCAL_CODE enabled, ~/repositories and the
    authorized_keys gitolite writes, one forced `gitolite-shell <user>` per key. Users are added the
    admin's way: keys and gitolite.conf pushed to gitolite-admin over ssh.

    Clients reach it as host `<user>` with `ssh -F <config>` (GIT_SSH_COMMAND in `env()`):
    ssh://alice/hub is repository hub as gitolite user alice."""

    def __init__(self, root: Path, users: tuple[str, ...] = ("alice", "bob")):
        self.dir = root / "gitolite-sshd"
        self.dir.mkdir(parents=True)
        self.home = root / "gitolite"
        self.home.mkdir()
        self.port = free_port()
        import getpass

        user = getpass.getuser()
        self.server_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.server_env.update(HOME=str(self.home), USER=user)
        hosts = []
        for who in ("admin", *users):
            key = self.dir / who  # gitolite names the user after the key's file: keydir/alice.pub
            keygen(key, who)
            hosts.append(client_host(who, self.port, user, key))
        (self.dir / "ssh_config").write_text("".join(hosts))
        self.gitolite("setup", "-pk", str(self.dir / "admin.pub"))
        rc = self.home / ".gitolite.rc"  # the two lines docs/hosting.md says to uncomment
        text = rc.read_text()
        for line in ('LOCAL_CODE                =>  "$ENV{HOME}/local",', "'repo-specific-hooks',"):
            assert f"# {line}" in text, f"{rc} has no commented {line!r}"
            text = text.replace(f"# {line}", line, 1)
        rc.write_text(text)
        (self.home / "local" / "hooks" / "repo-specific").mkdir(parents=True)
        # sshd logs every key in as this account; SetEnv gives gitolite-shell the account's home
        self.proc = start_sshd(self.dir, self.port, self.home / ".ssh" / "authorized_keys",
                               extra=f"SetEnv HOME={self.home}\n")
        self.users = users

    def gitolite(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `gitolite` command on the server, as its account."""
        proc = subprocess.run([GITOLITE, *args], env=self.server_env, cwd=self.home, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"gitolite {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def env(self) -> dict[str, str]:
        return {"GIT_SSH_COMMAND": f"ssh -F {self.dir / 'ssh_config'}"}

    def admin_push(self, conf: str, scratch: Path) -> str:
        """As the admin: add every user's key and append `conf` to gitolite.conf, pushed to
        gitolite-admin over ssh. Returns the push's output (gitolite's compile reports there)."""
        clone = scratch / "gitolite-admin"
        env = dict(os.environ, **self.env())
        subprocess.run(["git", "clone", "-q", "ssh://admin/gitolite-admin", str(clone)], env=env, check=True)
        for who in self.users:
            (clone / "keydir" / f"{who}.pub").write_text((self.dir / f"{who}.pub").read_text())
        with open(clone / "conf" / "gitolite.conf", "a") as out:
            out.write("\n" + conf)
        subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "add users and the hub"], cwd=clone, env=env, check=True)
        proc = subprocess.run(["git", "push", "origin", "HEAD"], cwd=clone, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"pushing gitolite-admin failed: {proc.stderr}")
        return proc.stderr

    def repo(self, name: str) -> Path:
        return self.home / "repositories" / f"{name}.git"

    def stop(self) -> None:
        GitDaemon.stop(self)  # type: ignore[arg-type]


def gitolite_missing() -> str | None:
    """Why gitolite cannot run here, or None."""
    if not os.path.exists(GITOLITE):
        return f"{GITOLITE} is not installed (apt-get install gitolite3)"
    return sshd_missing()


def sshd_missing() -> str | None:
    """Why sshd cannot run here, or None."""
    if not os.path.exists(SSHD):
        return f"{SSHD} is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "sshd for the tests needs root (it reads the host key and switches to the user)"
    return None


def serve(kind: str, hub: Path, scratch: Path, setenv):
    """Serve `hub` over "git" (anonymous), "http" (Basic auth) or "ssh" (a key per identity, the hub
    trusting their forced commands' GITSWARM_PUSHER; skips the test where sshd cannot run). Returns (server, url) where url(who) is the hub's URL as that
    identity. `setenv(name, value)` (monkeypatch.setenv) gives every git the test starts, and the
    workers' git, what the transport needs."""
    if kind == "ssh":
        if sshd_missing():
            import pytest

            pytest.skip(sshd_missing())
        ssh = SSHServer(scratch)
        # its keys' forced commands name the pusher: the operator says so (docs/serving.md, Identity)
        subprocess.run(["git", "config", "gitswarm.pusherEnv", "ssh"], cwd=hub, check=True)
        for name, value in ssh.env().items():
            setenv(name, value)
        return ssh, lambda who="alice": ssh.url(hub, who)
    if kind == "http":
        subprocess.run(["git", "config", "http.receivepack", "true"], cwd=hub, check=True)
        http = GitHTTP(hub.parent, require_auth=True)
        return http, lambda who="alice": http.url(hub.name, user=who)
    daemon = GitDaemon(hub.parent)
    return daemon, lambda who=None: daemon.url(hub.name)
