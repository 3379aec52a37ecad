"""The metering proxy: command agents reach their model through it, never with the host's key.

One `Meter` per process serves OpenAI-style requests on 127.0.0.1:<port> and on a unix socket in a
private 0700 folder (the sandbox's relay reaches it there). Each agent run gets a `Session`: a token
the agent uses as its API key. A request carrying a live token (``Authorization: Bearer``,
``api-key:`` or ``x-api-key:``) is forwarded to that session's upstream with the real key; anything
else gets 401. Before forwarding, the session's `allow()` may refuse (429 ``budget_exhausted``).
Tokens are counted from the responses' ``usage`` (streamed or not; chat-completions streams are
asked for usage), and every exchange is kept, bounded, as the run's transcript: bodies only, never
headers, so neither key is in it.

Only the model endpoints are served (``/v1/chat/completions``, ``/v1/completions``,
``/v1/responses``, ``/v1/embeddings``, ``/v1/models``), with GET and POST; ``.`` and ``..``
segments, encoded or not, are refused, so a request never leaves the upstream's base path. The
upstream is a base URL as the OpenAI client takes it: ``/v1/chat/completions`` goes to
``<upstream>/chat/completions``. When a session names its `model`, every request is made for that
model (the host pays for it); what the agent asked for is kept in `Session.models`.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socketserver
import tempfile
import threading
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from .errors import GitswarmError
from .meterhttp import Handler, now


class Session:
    """One agent run's credential, counters and transcript (see the module docstring)."""

    def __init__(self, meter: Meter, label: str, upstream: str, api_key: str | None, model: str | None,
                 allow: Callable[[], str | None], max_transcript: int):
        target = urllib.parse.urlsplit(upstream)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise GitswarmError(f"the model endpoint {upstream!r} is not an http(s) URL",
                                "set the role's base_url to the endpoint's base URL, e.g. https://host/v1")
        self.token = secrets.token_urlsafe(32)
        self.label, self.upstream, self.model = label, target, model
        self._api_key, self._allow, self._meter = api_key, allow, meter
        self.tokens_in = self.tokens_out = self.calls = 0
        self.cost: float | None = None
        self.unavailable: str | None = None
        self.refused: str | None = None
        self.models: set[str] = set()
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._size, self.max_transcript, self._cut = 2, max_transcript, 0  # 2: the list's brackets

    def transcript(self) -> list[dict[str, Any]]:
        with self._lock:
            note = [{"at": now(), "note": f"transcript cut: {self._cut} exchanges not recorded "
                                            f"(max_transcript {self.max_transcript} bytes)"}] if self._cut else []
            return [dict(e) for e in self._entries] + note

    def close(self) -> None:
        """The token is refused (401) from now on."""
        self._meter.forget(self.token)

    def credentials(self) -> dict[str, str]:
        """The upstream's auth header, with the real key (none without one)."""
        return {} if self._api_key is None else {"Authorization": f"Bearer {self._api_key}"}

    def asked(self, model: str) -> None:
        with self._lock:
            self.models.add(model[:200])

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> str | None:
        """Why the next call is refused (the budget), or None; a failing check refuses too."""
        try:
            reason = self._allow()
        except Exception as e:  # fail closed: whatever went wrong, no call goes out unchecked
            reason = f"the budget check failed: {e}"
        if reason:
            with self._lock:
                self.refused = str(reason)
        return str(reason) if reason else None

    def account(self, entry: dict[str, Any], used: tuple[int, int, float | None] | None,
                failure: str | None, forwarded: bool = True) -> None:
        """Count one exchange; `failure` is the upstream's (unreachable, 5xx), None when it answered."""
        with self._lock:
            if forwarded:
                self.calls += 1
                if failure:
                    self.unavailable = failure
                elif entry["status"] < 400:
                    self.unavailable = None
            if used:
                self.tokens_in += used[0]
                self.tokens_out += used[1]
                if used[2] is not None:
                    self.cost = (self.cost or 0.0) + used[2]
            entry.update(tokens_in=used[0] if used else 0, tokens_out=used[1] if used else 0)
            self._record(entry)

    def _record(self, entry: dict[str, Any]) -> None:
        """Keep the entry if it fits what is left of max_transcript; too big whole, with the
        starts of its bodies; else it only counts in the note saying the transcript was cut."""
        room = self.max_transcript - self._size - 200  # 200: the note, if one is needed
        size = len(json.dumps(entry)) + 2
        if size > room:
            spare = (room - len(json.dumps({**entry, "request": "", "response": ""}))) // 2 - 100
            for key in ("request", "response") if spare > 500 else ():
                text = entry[key] if isinstance(entry[key], str) else json.dumps(entry[key])
                cut = text[:spare]
                while len(json.dumps(cut)) > spare:  # escapes make JSON longer than the text
                    cut = cut[:len(cut) // 2]
                if len(cut) < len(text):
                    entry[key] = cut + f"[... cut, {len(text)} characters in all]"
            size = len(json.dumps(entry)) + 2
        if size > room:
            self._cut += 1
        else:
            self._entries.append(entry)
            self._size += size + 2  # 2: ", "

class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Meter:
    """The proxy (see the module docstring). `log` gets one line per call, never a key."""

    def __init__(self, log: Callable[[str], None] = lambda line: None):
        self.log = log
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._folder: Path | None = None
        self.port = 0
        self.socket_path = Path()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Meter:
        with self._lock:
            if self._servers:
                return self
            handler = type("MeterHandler", (Handler,), {"meter": self})
            tcp = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            tcp.daemon_threads = True
            self._folder = Path(tempfile.mkdtemp(prefix="gitswarm-meter-"))  # 0700
            self.socket_path = self._folder / "meter.sock"
            unix = _UnixServer(str(self.socket_path), handler)
            self.port = tcp.server_address[1]
            self._servers = [tcp, unix]
            for server in self._servers:
                threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True,
                                 name=f"meter-{type(server).__name__}").start()
        return self

    def open(self, *, label: str, upstream: str, api_key: str | None, model: str | None = None,
             allow: Callable[[], str | None] = lambda: None, max_transcript: int = 2_000_000) -> Session:
        """A session for one agent run: give the agent `session.token` as its API key and
        `meter.base_url` (or, in the sandbox, the relay's) as its base URL."""
        session = Session(self, label, upstream, api_key, model, allow, max_transcript)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def find(self, token: str) -> Session | None:
        with self._lock:
            return self._sessions.get(token) if token else None

    def forget(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def close(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, []
            self._sessions.clear()
        for server in servers:
            server.shutdown()
            server.server_close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Meter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
