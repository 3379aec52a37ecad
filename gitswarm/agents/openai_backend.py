"""A ChatModel for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp, ...).

Retries are ours, not the client's (it runs with max_retries=0): 429, 5xx, timeouts and connection
errors are retried with exponential backoff and jitter, honouring Retry-After (capped); then
`ModelUnavailable`. Any other 4xx is a configuration problem and raises `ModelRejected` at once.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from typing import Any, Callable

import openai

from gitswarm.agents import ModelRejected, ModelUnavailable, Reply, Tool, ToolCall

PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client insists on one

_HINTS = {
    401: "check the API key (OPENAI_API_KEY, or the api_key setting)",
    403: "the key is not allowed to use this model or endpoint; check the key and its project",
    404: "check the model name {model!r} and the base URL {url} (it usually ends in /v1)",
}


def retry_after(headers: Any) -> float | None:
    """Seconds asked for by `retry-after-ms` / `retry-after` (a number or an HTTP date), or None."""
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


class OpenAIModel:
    """`complete()` sends one chat completion with the tools as functions; see the module docstring.

    `backoff` is the first wait in seconds, doubled at each retry, jittered, capped at `max_wait`
    (which also caps a Retry-After). `sleep` is injectable for tests. `attempts` counts requests sent.
    `on_retry(why, wait, attempt, attempts)`, when given, hears of each wait before a retry (so
    that a run whose endpoint is down does not wait in silence).
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 temperature: float | None = None, timeout: float = 120, max_retries: int = 6,
                 extra: dict[str, Any] | None = None, *, backoff: float = 1.0, max_wait: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, float, int, int], None] | None = None):
        if api_key is None and not os.environ.get("OPENAI_API_KEY"):
            api_key = PLACEHOLDER_KEY
        self.name = model
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        self.base_url = str(self.client.base_url).rstrip("/")
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self.extra = dict(extra or {})
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.on_retry = on_retry
        self.attempts = 0
        self.waits: list[float] = []

    def _request(self, messages: list[dict[str, Any]], tools: list[Tool]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.name, "messages": messages}
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}} for t in tools]
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return {**kwargs, **self.extra}

    def complete(self, messages: list[dict[str, Any]], tools: list[Tool]) -> Reply:
        kwargs = self._request(messages, tools)
        last = ""
        for attempt in range(self.max_retries + 1):
            self.attempts += 1
            wait: float | None = None
            try:
                return to_reply(self.client.chat.completions.create(**kwargs))
            except openai.APITimeoutError:
                last = f"no answer within {self.timeout:g}s"
            except openai.APIConnectionError as e:
                last = f"connection failed ({e.__cause__ or e})"
            except openai.APIStatusError as e:
                if e.status_code != 429 and e.status_code < 500 and e.status_code != 408:
                    raise self._rejected(e) from None
                last = f"HTTP {e.status_code}: {_message(e)}"
                wait = retry_after(e.response.headers)
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = self.backoff * 2 ** attempt * (0.75 + 0.5 * random.random())
            wait = min(wait, self.max_wait)
            self.waits.append(wait)
            if self.on_retry is not None:
                self.on_retry(last, wait, attempt + 1, self.max_retries + 1)
            self.sleep(wait)
        raise ModelUnavailable(
            f"model {self.name!r} at {self.base_url} unavailable after {self.max_retries + 1} attempts: {last}",
            "check that the server is running and reachable from this host (its endpoints: gitswarm's "
            f"endpoints.yaml, or OPENAI_BASE_URL); a slow or flaky one may need more `timeout` (now "
            f"{self.timeout:g}s) or `retries` (now {self.max_retries}) in .gitswarm.yaml (under `defaults:` or "
            "the role's section); the task goes back to the board and is tried again",
            attempts=self.max_retries + 1)

    def _rejected(self, e: openai.APIStatusError) -> ModelRejected:
        hint = _HINTS.get(e.status_code, "the endpoint refused the request; check the model name, "
                                         "and that it supports tool calls").format(model=self.name, url=self.base_url)
        return ModelRejected(f"model {self.name!r} at {self.base_url} refused the request "
                             f"(HTTP {e.status_code}): {_message(e)}", hint, e.status_code)


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return e.message


def to_reply(response: Any) -> Reply:
    """Map a chat.completion to a Reply. Tolerates what local servers leave out (ids, usage, choices)."""
    usage = getattr(response, "usage", None)
    tokens_in = (getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
    tokens_out = (getattr(usage, "completion_tokens", 0) or 0) if usage else 0
    choices = getattr(response, "choices", None) or []
    if not choices:
        return Reply(None, [], tokens_in, tokens_out)
    message = choices[0].message
    calls = []
    for i, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = getattr(call, "function", None) or getattr(call, "custom", None)
        name = getattr(function, "name", "") or ""
        arguments = getattr(function, "arguments", None)
        if arguments is None:
            arguments = getattr(function, "input", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(ToolCall(getattr(call, "id", None) or f"call_{i}", name, arguments))
    return Reply(message.content, calls, int(tokens_in), int(tokens_out))
