"""An OpenAI-compatible chat-completions server on 127.0.0.1 for tests, driven by a script.

    with FakeOpenAI() as server:
        server.enqueue_tool_call("finish", {"summary": "done"})
        model = OpenAIModel("fake-model", base_url=server.base_url)

Responses come from routes first (`server.route(fn)`: fn(request) returns a Response or None, so
several agents can share one server and be answered by role), then from the queue, in order. An
unscripted request gets HTTP 400 (not retried) saying so. A request with `"stream": true` is
answered as server-sent events (chunked), ending with a usage chunk when the request asked for it
(`stream_options.include_usage`), as OpenAI does. Every request is recorded in `server.requests`. Builders: `tool_call`, `tool_calls`, `text`, `error`, `delayed`.

Use it as a fixture with `from fake_openai import fake_openai  # noqa: F401`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

USAGE = (10, 5)


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def system(self) -> str:
        """The system prompt (handy for routing by role)."""
        return next((m.get("content") or "" for m in self.messages if m.get("role") == "system"), "")

    @property
    def tools(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1] if self.messages else {}


@dataclass(frozen=True)
class Response:
    """What to answer: a chat message (content and/or calls) or an error status; after `delay` seconds."""

    status: int = 200
    content: str | None = None
    calls: tuple[tuple[str, Any], ...] = ()
    usage: tuple[int, int] | None = USAGE
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    delay: float = 0.0


def tool_calls(*calls: tuple[str, dict[str, Any] | str | None], content: str | None = None,
               usage: tuple[int, int] | None = USAGE) -> Response:
    """Tool calls: (name, arguments) pairs; arguments a dict, or a string sent as is (bad JSON)."""
    return Response(content=content, calls=tuple(calls), usage=usage)


def tool_call(name: str, arguments: dict[str, Any] | str | None = None, **kw: Any) -> Response:
    return tool_calls((name, arguments), **kw)


def text(content: str | None, usage: tuple[int, int] | None = USAGE) -> Response:
    return Response(content=content, usage=usage)


def error(status: int, message: str | None = None, retry_after: float | str | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Response(status=status, headers=headers, error=message or f"fake error {status}")


def delayed(seconds: float, response: Response | None = None) -> Response:
    """`response` (by default an empty text reply) after `seconds`: longer than the client's timeout
    provokes a timeout."""
    return replace(response or text("late"), delay=seconds)


class FakeOpenAI:
    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[Request] = []
        self.queue: list[Response] = []
        self.routes: list[Callable[[Request], Response | None]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting --------------------------------------------------------------------------------
    def enqueue(self, *responses: Response) -> None:
        with self._lock:
            self.queue.extend(responses)

    def enqueue_tool_call(self, name: str, arguments: dict[str, Any] | str | None = None, **kw: Any) -> None:
        self.enqueue(tool_call(name, arguments, **kw))

    def enqueue_tool_calls(self, *calls: tuple[str, Any], **kw: Any) -> None:
        self.enqueue(tool_calls(*calls, **kw))

    def enqueue_text(self, content: str, **kw: Any) -> None:
        self.enqueue(text(content, **kw))

    def enqueue_error(self, status: int, message: str | None = None, retry_after: float | str | None = None) -> None:
        self.enqueue(error(status, message, retry_after))

    def enqueue_delay(self, seconds: float, response: Response | None = None) -> None:
        self.enqueue(delayed(seconds, response))

    def route(self, fn: Callable[[Request], Response | None]) -> Callable[[Request], Response | None]:
        """Answer requests for which `fn` returns a Response (usable as a decorator); routes come first."""
        with self._lock:
            self.routes.append(fn)
        return fn

    # -- serving ----------------------------------------------------------------------------------
    def _next(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            routes = list(self.routes)
        for fn in routes:
            response = fn(request)
            if response is not None:
                return response
        with self._lock:
            if self.queue:
                return self.queue.pop(0)
        return error(400, f"fake_openai: no scripted response for request {len(self.requests)}")

    def _completion(self, request: Request, r: Response) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": r.content}
        if r.calls:
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args or {})}}
                for name, args in r.calls]
        body: dict[str, Any] = {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if r.calls else "stop"}]}
        if r.usage is not None:
            body["usage"] = {"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1],
                             "total_tokens": sum(r.usage)}
        return body

    def _chunks(self, request: Request, r: Response) -> Iterator[dict[str, Any]]:
        """A completion as OpenAI streams it: role, content in pieces, tool calls, finish, usage."""
        head = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": request.body.get("model", "fake-model")}
        delta = lambda d, finish=None: {**head, "choices": [{"index": 0, "delta": d, "logprobs": None,  # noqa: E731
                                                             "finish_reason": finish}]}
        yield delta({"role": "assistant", "content": ""})
        for piece in (r.content or "").split(" ") if r.content else ():
            yield delta({"content": piece + " "})
        for i, (name, args) in enumerate(r.calls):
            arguments = args if isinstance(args, str) else json.dumps(args or {})
            yield delta({"tool_calls": [{"index": i, "id": f"call_{next(self._ids)}", "type": "function",
                                         "function": {"name": name, "arguments": arguments}}]})
        yield delta({}, "tool_calls" if r.calls else "stop")
        if r.usage is not None and (request.body.get("stream_options") or {}).get("include_usage"):
            yield {**head, "choices": [], "usage": {"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1],
                                                    "total_tokens": sum(r.usage)}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one response in two writes would wait out delayed ACKs

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def _stream(self, request: Request, response: Response) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    events = [f"data: {json.dumps(c)}\n\n".encode() for c in fake._chunks(request, response)]
                    for event in [*events, b"data: [DONE]\n\n"]:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                request = Request(self.path, json.loads(raw or b"{}"), dict(self.headers.items()))
                response = fake._next(request)
                if response.delay and fake._closing.wait(response.delay):
                    return
                if response.status != 200:
                    self._send(response.status, {"error": {"message": response.error, "type": "fake_error",
                                                           "param": None, "code": None}}, response.headers)
                elif request.body.get("stream") is True:
                    self._stream(request, response)
                else:
                    self._send(200, fake._completion(request, response), response.headers)

        return Handler

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
