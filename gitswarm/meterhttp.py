"""The meter's HTTP side: which requests pass (`below_v1`, the headers), how one is forwarded to
the model endpoint and its answer passed back, streamed or not, and the usage read from it
(`usage_of`). `gitswarm.meter` holds the sessions and serves this handler."""

from __future__ import annotations

import datetime
import http.client
import json
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .meter import Meter, Session

MAX_BODY = 32 * 1024 * 1024  # a request's body; larger: 413
MAX_RESPONSE = 64 * 1024 * 1024  # a non-streamed response's body; larger: 502
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 600.0
CLIENT_TIMEOUT = 120.0  # an agent's connection that sends nothing for this long is closed
ENDPOINTS = frozenset({"chat", "completions", "responses", "embeddings", "models"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding",
                        "content-encoding", "expect"})
SECRET_HEADER = re.compile(r"auth|key|token|cookie|secret|organization|project", re.I)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
SEGMENT = re.compile(r"^[A-Za-z0-9._~:@+=,-]+$")  # a path segment, once %-decoded


def usage_of(event: Any) -> tuple[int, int, float | None] | None:
    """(tokens in, tokens out, cost) from a response body or a streamed event: ``usage`` with
    prompt/completion tokens (chat, completions) or input/output tokens (responses, also inside
    ``response`` of a ``response.completed`` event); None when it has none."""
    if not isinstance(event, dict):
        return None
    usage = event.get("usage")
    if not isinstance(usage, dict) and isinstance(event.get("response"), dict):
        usage = event["response"].get("usage")
    if not isinstance(usage, dict):
        return None
    count = lambda *names: next((int(usage[n]) for n in names  # noqa: E731
                                 if isinstance(usage.get(n), (int, float)) and usage[n] >= 0), 0)
    cost = usage.get("cost")
    return (count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens"),
            float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0 else None)


def below_v1(raw: str) -> str | None:
    """The path and query below ``/v1`` of a request line's target (``/chat/completions?x=1``), or
    None when it is not one of the model endpoints or holds a ``.``/``..`` segment or anything
    that %-decodes to a separator or a control character."""
    path, _, query = raw.partition("?")
    if not path.startswith("/v1/") or any(c in raw for c in "\\#\r\n\t "):
        return None
    segments = path[len("/v1/"):].rstrip("/").split("/")
    for segment in segments:
        decoded = urllib.parse.unquote(segment, errors="strict") if "%" in segment else segment
        if decoded in (".", "..") or not SEGMENT.match(decoded):
            return None
    if segments[0] not in ENDPOINTS or not HEADER_VALUE.match(query):
        return None
    return "/" + "/".join(segments) + (f"?{query}" if query else "")


def error_body(message: str, kind: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def as_kept(data: bytes) -> Any:
    """A body as the transcript keeps it: JSON when it is, text otherwise."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")

class _Events:
    """Reads a server-sent-event stream as it passes: the last ``usage`` seen, and the text kept."""

    def __init__(self, keep: int):
        self.used: tuple[int, int, float | None] | None = None
        self.kept, self._keep, self._line = bytearray(), keep, bytearray()

    def feed(self, chunk: bytes) -> None:
        self.kept += chunk[:max(0, self._keep - len(self.kept))]
        self._line += chunk
        *lines, rest = self._line.split(b"\n")
        self._line = bytearray(rest if len(rest) < MAX_BODY else b"")
        for line in lines:
            if line.startswith(b"data:") and line[5:].strip() not in (b"", b"[DONE]"):
                try:
                    self.used = usage_of(json.loads(line[5:])) or self.used
                except ValueError:
                    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT
    meter: Meter

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._answer(405, error_body("the model proxy serves GET and POST only", "invalid_request_error",
                                 "method_not_allowed"), close=True)

    do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_PUT

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False) -> None:
        if close:
            self.close_connection = True
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _token(self) -> str:
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return (self.headers.get("api-key") or self.headers.get("x-api-key") or "").strip()

    def _serve(self) -> None:
        session = self.meter.find(self._token())
        if session is None:
            return self._answer(401, error_body("invalid or expired gitswarm token: use the OPENAI_API_KEY "
                                            "gitswarm gave this run", "invalid_request_error",
                                            "invalid_api_key"), close=True)
        below = below_v1(self.path)
        if below is None:
            return self._answer(404, error_body("no such model endpoint here: the meter serves /v1/ + "
                                            f"{', '.join(sorted(ENDPOINTS))}", "invalid_request_error",
                                            "unknown_url"), close=True)
        if "Transfer-Encoding" in self.headers or len(self.headers.get_all("Content-Length") or []) > 1:
            return self._answer(411, error_body("send the body with a Content-Length", "invalid_request_error",
                                            "length_required"), close=True)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return self._answer(413, error_body(f"a request body must be 0 to {MAX_BODY} bytes",
                                            "invalid_request_error", "request_too_large"), close=True)
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return
        entry = {"at": now(), "method": self.command, "path": below.partition("?")[0], "request": as_kept(body)}
        reason = session.check()
        if reason:
            answer = error_body(f"gitswarm refused the call: {reason}", "insufficient_quota", "budget_exhausted")
            self._answer(429, answer)
            entry.update(status=429, response=as_kept(answer))
            return session.account(entry, None, None, forwarded=False)
        self._forward(session, below, self._rewrite(session, below, body), entry)

    def _rewrite(self, session: Session, below: str, body: bytes) -> bytes:
        """The body as it goes upstream: the session's model, and usage asked for in streams."""
        try:
            request = json.loads(body) if body else None
        except ValueError:
            return body
        if not isinstance(request, dict):
            return body
        asked = request.get("model")
        if isinstance(asked, str):
            session.asked(asked)
        changed = session.model is not None and "model" in request and asked != session.model
        if changed:
            request["model"] = session.model
        path = below.partition("?")[0]
        if request.get("stream") is True and path in ("/chat/completions", "/completions"):
            options = request.get("stream_options")
            if not isinstance(options, dict) or options.get("include_usage") is not True:
                request["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
                changed = True
        return json.dumps(request).encode() if changed else body

    def _headers_out(self, session: Session, body: bytes) -> dict[str, str]:
        drop = {n.strip().lower() for v in self.headers.get_all("Connection") or [] for n in v.split(",")} | HOP_BY_HOP
        out = {name: value for name, value in self.headers.items()
               if name.lower() not in drop and not SECRET_HEADER.search(name)
               and HEADER_NAME.match(name) and HEADER_VALUE.match(value)}
        out.update({"Host": session.upstream.netloc, "Content-Length": str(len(body)), "Accept-Encoding": "identity"})
        out.update(session.credentials())
        return out

    def _forward(self, session: Session, below: str, body: bytes, entry: dict[str, Any]) -> None:
        """Ask the upstream, count, and answer: counted before the agent has the (last of the)
        answer, so what it sees next (a refusal) already knows of this call."""
        base = session.upstream
        path, _, query = below.partition("?")
        target = base.path.rstrip("/") + path + ("?" + "&".join(q for q in (base.query, query) if q)
                                                 if base.query or query else "")
        kind = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
        conn = kind(base.hostname, base.port, timeout=CONNECT_TIMEOUT)
        try:
            try:
                conn.connect()
                conn.sock.settimeout(READ_TIMEOUT)
                conn.request(self.command, target, body=body or None, headers=self._headers_out(session, body))
                response = conn.getresponse()
                streaming = response.getheader("Content-Type", "").startswith("text/event-stream")
                data = b"" if streaming else response.read(MAX_RESPONSE + 1)
            except (OSError, http.client.HTTPException) as e:
                why = f"the model endpoint {base.scheme}://{base.netloc} is unreachable: {type(e).__name__}: {e}"
                self.meter.log(f"meter: {session.label}: {why}")
                answer = error_body(why, "api_error", "upstream_unavailable")
                entry.update(status=502, response=as_kept(answer))
                session.account(entry, None, why)
                return self._answer(502, answer)
            entry["status"] = response.status
            failure = f"the model endpoint answered HTTP {response.status}" if response.status >= 500 else None
            done = lambda used: self._done(session, entry, used, failure)  # noqa: E731
            passed = {n: v for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP | {"set-cookie"}}
            if streaming:
                self._stream(response, passed, session, entry, done)
            elif len(data) > MAX_RESPONSE:
                answer = error_body("the model's response is too large", "api_error", "response_too_large")
                entry.update(status=502, response=as_kept(answer))
                done(None)
                self._answer(502, answer, close=True)
            else:
                entry["response"] = as_kept(data)
                done(usage_of(entry["response"]))
                self._answer(response.status, data, passed)
        finally:
            conn.close()

    def _done(self, session: Session, entry: dict[str, Any], used: tuple[int, int, float | None] | None,
              failure: str | None) -> None:
        session.account(entry, used, failure)
        self.meter.log(f"meter: {session.label}: {self.command} {entry['path']} {entry['status']} "
                       f"in={used[0] if used else 0} out={used[1] if used else 0}")

    def _stream(self, response: http.client.HTTPResponse, headers: dict[str, str], session: Session,
                entry: dict[str, Any], done: Callable[[tuple[int, int, float | None] | None], None]) -> None:
        """Pass the events through as they come (chunked, or until close for HTTP/1.0), reading
        usage on the way. What ends a stream (`[DONE]`, `response.completed`) is held back until
        the call is counted; when the agent hangs up, read on to the end so the call still is."""
        events, chunked, writing = _Events(session.max_transcript), self.request_version == "HTTP/1.1", True
        held: list[bytes] = []
        broke = False

        def write(data: bytes) -> None:
            nonlocal writing
            if writing and data:
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                except OSError:
                    writing, self.close_connection = False, True

        try:
            self.send_response(response.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked") if chunked else self.send_header("Connection", "close")
            self.end_headers()
        except OSError:
            writing = False
        self.close_connection = self.close_connection or not chunked
        try:
            while chunk := response.read1(65536):
                events.feed(chunk)
                if held or b"[DONE]" in chunk or b"response.completed" in chunk:
                    held.append(chunk)
                else:
                    write(chunk)
        except (OSError, http.client.HTTPException) as e:
            self.close_connection = broke = True
            events.kept += f"\n[gitswarm: the stream broke: {type(e).__name__}]".encode()
        entry["response"] = events.kept.decode(errors="replace")
        done(events.used)
        write(b"".join(held))
        if writing and chunked and not broke:
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
