"""Settings: `.gitswarm.yaml` on main. How each role (planner, worker, judge) runs its agent, and
the daemon's timings. Pure: the caller reads the file from main's tip and passes its text.

    # .gitswarm.yaml
    model: gpt-4o                  # every role's model; or `defaults:` with any role setting
    worker:
      max_steps: 80
      wall_time: 20m
    judge:
      backend: command             # an agent that is a program, not a model
      command: ./scripts/judge.sh
    debounce: 2s
    lease: 15m
    workers: 4

A role's settings are layered: the built-in defaults, then `defaults:` (or `model:`), then the
role's own section, then a goal's `models:` (`Config.for_goal`). Durations are seconds or text
like 30s, 10m, 2h, 1h30m (`gitswarm.validate.parse_duration`).

Where a model is reached, and with which key, is the host's choice (gitswarm.endpoints): main
chooses among the host's endpoints, by `endpoint: <name>` or by the exact `base_url:` of one, and
never names a key's variable. The caller passes the host's endpoints in.

YAML is read by gitswarm.yamlfile, its fields checked by gitswarm.validate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .endpoints import NAME_RE as ENDPOINT_RE, URL_RE, Endpoints, from_environment
from .errors import FileInvalid
from .names import MAX_ATTEMPTS
from .sandbox import network_allowed
from .text import CONTROL_RE  # the characters task files refuse
from .validate import Collect, Fields, shown, typename, unknown_hint
from .yamlfile import load_yaml

CONFIG_PATH = ".gitswarm.yaml"
DEFAULT_MODEL = "gpt-4o-mini"
MODEL_ENV = "GITSWARM_MODEL"
MAX_FILE_BYTES = 64 * 1024

ROLES = ("planner", "worker", "judge")
BACKENDS = ("openai", "command")
PROMPT_MODES = ("stdin", "file")
NETWORKS = ("off", "model", "on")
ROLE_FIELDS = ("backend", "model", "endpoint", "base_url", "temperature", "timeout", "retries", "command",
               "prompt_mode", "network", "ignore", "max_steps", "max_tokens", "wall_time", "max_output", "price",
               "attempts")
MAX_IGNORE = 100
HOST_ONLY = ("api_key_env",)  # role settings that only the host's endpoints file may give
FIELDS = ("defaults", "model", *ROLES, "debounce", "max_depth", "lease", "workers", "max_attempts", "retry_backoff")

_MODEL_RE = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}\Z")


class ConfigInvalid(FileInvalid):
    """`.gitswarm.yaml` (or a goal's `models:`) breaks the rules."""


@dataclass(frozen=True)
class RoleConfig:
    """How one role runs its agent.

    backend: "openai" (an OpenAI-compatible endpoint of the host's: `endpoint` names it, and its
    `base_url` and the environment variable holding its key, `api_key_env`, are the host's) or
    "command" (a program is the agent: `command`, given the prompt on stdin or in a file, per
    `prompt_mode`; docs/agents.md). A command role reaches its model (the endpoint chosen as for
    an openai role) only through gitswarm's metering proxy, and its sandbox's `network` is "off"
    (nothing), "model" (the proxy only: the default when the role has an endpoint) or "on" (the
    host's network: only where the host allows it, GITSWARM_AGENT_NETWORK=on). `ignore`:
    gitignore patterns of files the agent leaves (caches, transcripts) kept out of its commit.
    The limits bound one agent run: `max_steps` model calls, `max_tokens` tokens
    (prompt and completion, summed over the run), `wall_time` seconds, `max_output` characters of
    one tool result shown to the model. An openai role waits `timeout` seconds for one answer of
    its endpoint and sends a failed request again `retries` times (with backoff) before the model
    counts as unavailable. `price` ({input: USD, output: USD} per million tokens) puts a cost on
    each run, on the task's result and the goal's record (else the cost the endpoint or agent said).
    `attempts` (the worker's): its best of N, as variants of these settings, one per attempt
    (gitswarm/attempts.py); () for one attempt."""

    backend: str = "openai"
    model: str | None = None
    endpoint: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    timeout: float = 120.0
    retries: int = 6
    command: str | None = None
    prompt_mode: str = "stdin"
    network: str | None = None  # None: "model" for a command role with an endpoint, else "off"
    ignore: tuple[str, ...] = ()
    max_steps: int = 50
    max_tokens: int = 200_000
    wall_time: float = 1800.0
    max_output: int = 20_000
    price: tuple[float, float] | None = None  # USD per million tokens in (prompt) and out (completion)
    attempts: tuple = field(default=(), hash=False)  # a worker's best of N (gitswarm/attempts.py): variants

    @property
    def runs_command(self) -> bool:
        """Whether the role's agent is a program (the `command` backend), not gitswarm's tool loop
        around a model (gitswarm.agents.backends): the one place this is decided."""
        return self.backend == "command"

    def cost(self, tokens_in: int, tokens_out: int, said: float | None) -> float | None:
        """What a run cost in USD: its tokens at `price` where the settings give one (the figure the
        operator pays), else what the endpoint or the agent said (`said`; None: unknown)."""
        if self.price is None:
            return said
        return round((tokens_in * self.price[0] + tokens_out * self.price[1]) / 1e6, 6)


@dataclass(frozen=True)
class Config:
    """`.gitswarm.yaml`: a RoleConfig per role, and the daemon's settings: `debounce` (seconds to
    wait for more events before acting), `max_depth` (how deep planners may hand areas to
    sub-planners), `lease` (seconds a claim holds without news before it may be taken back),
    `workers` (worker processes; None: the daemon decides). `endpoints`: the host's, which the
    roles' endpoints were chosen from (and a goal's are)."""

    planner: RoleConfig = field(default_factory=RoleConfig)
    worker: RoleConfig = field(default_factory=RoleConfig)
    judge: RoleConfig = field(default_factory=RoleConfig)
    debounce: float = 2.0
    max_depth: int = 2
    lease: float = 900.0
    workers: int | None = None
    max_attempts: int = 3  # claims of a task before a lapse or failure leaves it dead
    retry_backoff: float = 10.0  # seconds before a task whose attempt ended is claimed again (doubling)
    endpoints: Endpoints | None = field(default=None, compare=False, repr=False)

    def role(self, name: str) -> RoleConfig:
        if name not in ROLES:
            raise ValueError(f"unknown role {name!r}; the roles are: {', '.join(ROLES)}")
        return getattr(self, name)

    def for_goal(self, goal_models: dict[str, dict[str, Any]] | None, path: str = "the goal") -> Config:
        """This config with a goal's per-role overrides (`models:` in the goal's front matter)
        applied on top. `path` is the goal's file, named in errors (field `models.<role>...`)."""
        if not goal_models:
            return self
        if not isinstance(goal_models, dict):
            raise ConfigInvalid(path, "models", f"must be a mapping of roles, not {typename(goal_models)}",
                                f"the roles are: {', '.join(ROLES)}")
        endpoints = self.endpoints or from_environment()
        changed: dict[str, RoleConfig] = {}
        for role, overrides in goal_models.items():
            if role not in ROLES:
                raise ConfigInvalid(path, f"models.{role}", "unknown role", unknown_hint(role, ROLES, "the roles are"))
            settings = parse_role_overrides(overrides, path, f"models.{role}", endpoints)
            changed[role] = _finish(dataclasses.replace(self.role(role), **settings), path, f"models.{role}",
                                    endpoints)
        return dataclasses.replace(self, **changed)


# ---------------------------------------------------------------- loading

def load_config(text: str | None, path: str = CONFIG_PATH, endpoints: Endpoints | None = None) -> Config:
    """Parse `.gitswarm.yaml`. None (no such file on main) or an empty file: the defaults, with the
    model from $GITSWARM_MODEL or gpt-4o-mini. `endpoints`: the host's (None: the one its
    environment names, gitswarm.endpoints.from_environment). Raises ConfigInvalid naming the file
    and field: the first problem found."""
    return _load(text, path, endpoints or from_environment(), Collect())


def config_errors(text: str | None, path: str = CONFIG_PATH) -> list[ConfigInvalid]:
    """Every problem of `.gitswarm.yaml` that is main's own, by the same checks as load_config (one
    per setting; YAML that does not parse is the only one). What depends on the host that serves
    it (its endpoints; whether it lets agents reach its network) is left to that host: `gitswarm
    serve` marks the goals it cannot run invalid, saying why. [] when it is valid."""
    errors: list = []
    try:
        _load(text, path, None, Collect(errors))
    except ConfigInvalid as e:
        errors.append(e)
    return errors


def _load(text: str | None, path: str, endpoints: Endpoints | None, collect: Collect) -> Config:
    """load_config's checks; `endpoints` None: none of the host's (config_errors)."""
    v = _Fields(path)
    doc = None if text is None else load_yaml(text, path, v.fail, MAX_FILE_BYTES)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigInvalid(path, None, f"must hold a YAML mapping, not {typename(doc)}",
                            f"the settings are: {', '.join(FIELDS)}")
    for key in doc:
        if key not in FIELDS:
            collect.add(ConfigInvalid(path, str(key), "unknown setting", unknown_hint(key, FIELDS, "the settings are")))
    common = collect(lambda: _common(doc, path, endpoints, collect), {})
    roles: dict[str, RoleConfig] = {}
    for role in ROLES:
        own = collect(lambda: parse_role_overrides(doc[role], path, role, endpoints, collect)
                      if doc.get(role) is not None else {}, {})
        if role != "worker" and own.pop("attempts", None) is not None:
            collect.add(ConfigInvalid(path, f"{role}.attempts", "is a worker setting: best of N has workers make "
                                      "several attempts at a task", "put it under worker: (or defaults:)"))
        roles[role] = collect(lambda: _finish(RoleConfig(**{**common, **own}), path, role, endpoints), RoleConfig())
    return Config(
        **roles,
        debounce=collect(lambda: v.duration("debounce", doc.get("debounce", 2.0), 0.0, 3600.0), 2.0),
        max_depth=collect(lambda: v.integer("max_depth", doc.get("max_depth", 2), 0, 5), 2),
        lease=collect(lambda: v.duration("lease", doc.get("lease", 900.0), 1.0, 7 * 86400.0), 900.0),
        workers=None if doc.get("workers") is None else collect(
            lambda: v.integer("workers", doc["workers"], 1, 1024), None),
        max_attempts=collect(lambda: v.integer("max_attempts", doc.get("max_attempts", 3), 1, 1000), 3),
        retry_backoff=collect(lambda: v.duration("retry_backoff", doc.get("retry_backoff", 10.0), 0.0, 86400.0),
                              10.0),
        endpoints=endpoints,
    )


def _common(doc: dict[str, Any], path: str, endpoints: Endpoints | None, collect: Collect) -> dict[str, Any]:
    """The settings every role shares: `defaults:`, and `model:` (a model name, or a mapping like
    `defaults:`)."""
    defaults = doc.get("defaults")
    common = parse_role_overrides(defaults, path, "defaults", endpoints, collect) if defaults is not None else {}
    if "model" not in doc:
        return common
    model = doc["model"]
    if isinstance(model, dict):
        if defaults is not None:
            raise ConfigInvalid(path, "model", "given together with defaults",
                                "put the settings under one of them; `model:` alone may name the model")
        return parse_role_overrides(model, path, "model", endpoints, collect)
    if "model" in common:
        raise ConfigInvalid(path, "model", "given twice (also as defaults.model)", "keep one of them")
    return {**common, **parse_role_overrides({"model": model}, path, "")}


def parse_role_overrides(doc: Any, path: str, field_name: str, endpoints: Endpoints | None = None,
                         collect: Collect | None = None) -> dict[str, Any]:
    """Validate a (partial) mapping of role settings and return it normalized (durations in
    seconds). `field_name` prefixes the fields named in errors ("worker" -> "worker.max_steps").
    With the host's `endpoints`, an `endpoint` or `base_url` becomes the name of the host endpoint
    it chooses (`endpoint`), and one the host does not allow is refused; without them (a goal
    parsed apart from any host) both are kept as written, for Config.for_goal to choose. `collect`:
    how a bad setting is met (default: raised; gitswarm.validate.Collect)."""
    prefix = f"{field_name}." if field_name else ""
    if not isinstance(doc, dict):
        raise ConfigInvalid(path, field_name or None, f"must be a mapping of settings, not {typename(doc)}",
                            f"the settings are: {', '.join(ROLE_FIELDS)}")
    v = _Fields(path)
    collect = collect or Collect()
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if key in HOST_ONLY:
            collect.add(ConfigInvalid(path, name, "is not a setting main may give: the key an endpoint gets is "
                                      "chosen by the host", "remove it; the host's operator names each endpoint's "
                                      "key variable in ~/.config/gitswarm/endpoints.yaml"))
        elif key not in ROLE_FIELDS:
            collect.add(ConfigInvalid(path, name, "unknown setting",
                                      unknown_hint(key, ROLE_FIELDS, "the settings are")))
        else:
            checked = collect(lambda: (_ROLE_CHECKS[key](v, name, value),), ())
            if checked:
                out[key] = checked[0]
    if endpoints is not None and ("endpoint" in out or "base_url" in out):
        out["endpoint"] = endpoints.choose(out.get("endpoint"), out.pop("base_url", None), field_name, v.fail)
    return out


def _finish(role: RoleConfig, path: str, field_name: str, endpoints: Endpoints | None) -> RoleConfig:
    """Checks across fields; for an openai role, the default model and the host endpoint it uses
    (the one chosen, or the host's default), with the host's base_url and key variable.
    `endpoints` None: the checks that need no host only."""
    if role.runs_command and not role.command:
        raise ConfigInvalid(path, f"{field_name}.command", "required when backend is command",
                            "give the program that runs the agent, e.g. command: ./agent.sh "
                            "(or use backend: openai)")
    if endpoints is None:
        return role
    if role.network == "on" and not network_allowed():
        raise ConfigInvalid(path, f"{field_name}.network", "is on, and this host does not let agents reach its "
                            "network", "use network: model (the role's model endpoint only) or off; the host's "
                            "operator allows it with GITSWARM_AGENT_NETWORK=on")
    chosen = endpoints.get(role.endpoint or endpoints.default or "")
    if chosen is None:
        if role.runs_command and not role.endpoint:  # a program that needs no model
            return dataclasses.replace(role, endpoint=None, base_url=None, api_key_env=None,
                                       network=role.network or "off")
        raise ConfigInvalid(path, f"{field_name}.endpoint", "names no endpoint, and the host has several and no "
                            "default", f"name one with endpoint: <name>; {endpoints.hint()}")
    return dataclasses.replace(role, model=role.model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL,
                               endpoint=chosen.name, base_url=chosen.base_url, api_key_env=chosen.api_key_env,
                               network=role.network or ("model" if role.runs_command else None))


# ---------------------------------------------------------------- values

class _Fields(Fields):
    """The toolkit's checks, with ConfigInvalid as the error, and the role settings' own."""

    def __init__(self, path: str):
        super().__init__(lambda field_name, problem, hint=None: ConfigInvalid(path, field_name, problem, hint))

    def optional(self, name: str, value: Any, regex: re.Pattern[str], what: str) -> str | None:
        return None if value is None else self.match(name, value, regex, what)

    def ignore(self, name: str, value: Any) -> tuple[str, ...]:
        """gitignore patterns, as a list of text (one pattern: a text)."""
        items = [value] if isinstance(value, str) else value
        hint = "give gitignore patterns, e.g. ignore: [.aider*, '*.traj.json']"
        if not isinstance(items, (list, tuple)) or len(items) > MAX_IGNORE:
            raise self.fail(name, f"must be a list of at most {MAX_IGNORE} patterns, not {shown(value)}", hint)
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip() or len(item) > 200 or "\n" in item \
                    or CONTROL_RE.search(item):
                raise self.fail(f"{name}[{i}]", f"{shown(item)} is not a pattern", hint)
        return tuple(items)

    def temperature(self, name: str, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
            raise self.fail(name, f"{shown(value)} is not a temperature", "give a number from 0 to 2 (or null)")
        return float(value)

    def price(self, name: str, value: Any) -> tuple[float, float] | None:
        hint = "give USD per million tokens: price: {input: 2.5, output: 10} (or one number for both, or null)"
        if value is None:
            return None
        if isinstance(value, dict):
            self.known_keys(name, dict(sorted(value.items(), key=lambda kv: str(kv[0]))), ("input", "output"),
                            "a price holds")
            if set(value) != {"input", "output"}:
                raise self.fail(name, "needs both input and output", hint)
            return self.dollars(f"{name}.input", value["input"], hint), self.dollars(f"{name}.output",
                                                                                    value["output"], hint)
        both = self.dollars(name, value, hint)
        return both, both

    def dollars(self, name: str, value: Any, hint: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= 10_000:
            raise self.fail(name, f"{shown(value)} is not a price", hint + "; from 0 to 10000")
        return float(value)

    def attempts(self, name: str, value: Any) -> tuple:
        return parse_attempts(value, name, self.fail)


_ROLE_CHECKS: dict[str, Callable[[_Fields, str, Any], Any]] = {  # (checks, field, value) -> the setting
    "attempts": _Fields.attempts,
    "backend": lambda v, name, value: v.choice(name, value, BACKENDS, "a backend"),
    "model": lambda v, name, value: v.optional(name, value, _MODEL_RE, "a model name without spaces, e.g. gpt-4o-mini"),
    "endpoint": lambda v, name, value: v.optional(name, value, ENDPOINT_RE,
                                                  "the name of one of the host's endpoints, e.g. local"),
    "base_url": lambda v, name, value: v.optional(name, value, URL_RE,
                                                  "an http:// or https:// URL, e.g. http://localhost:8000/v1"),
    "temperature": _Fields.temperature,
    "timeout": lambda v, name, value: v.duration(name, value, 1.0, 3600.0),
    "retries": lambda v, name, value: v.integer(name, value, 0, 100),
    "command": _Fields.command,
    "prompt_mode": lambda v, name, value: v.choice(name, value, PROMPT_MODES, "a prompt mode"),
    "network": lambda v, name, value: v.choice(name, value, NETWORKS, "a network setting"),
    "ignore": _Fields.ignore,
    "max_steps": lambda v, name, value: v.integer(name, value, 1, 100_000),
    "max_tokens": lambda v, name, value: v.integer(name, value, 1, 10_000_000_000),
    "wall_time": _Fields.duration,
    "max_output": lambda v, name, value: v.integer(name, value, 100, 10_000_000),
    "price": _Fields.price,
}


ATTEMPTS_HINT = ("write attempts: 3, or a list of variants, each a mapping of worker settings: "
                 "attempts: [{model: a}, {backend: command, command: ./agent.sh}]")


def parse_attempts(value: Any, name: str, fail: Any) -> tuple[Mapping[str, Any], ...]:
    """`attempts:` as written (a number 1-16, or a list of 1-16 mappings of worker settings) as a
    tuple of variants (empty mappings for a number). `fail(field, problem, hint)` makes the error."""
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise fail(name, f"must be a number of attempts or a list of variants, not {type(value).__name__}",
                   ATTEMPTS_HINT)
    if isinstance(value, int):
        if not 1 <= value <= MAX_ATTEMPTS:
            raise fail(name, f"{value} is out of range", f"give a number from 1 to {MAX_ATTEMPTS}")
        return tuple({} for _ in range(value))
    if not 1 <= len(value) <= MAX_ATTEMPTS:
        raise fail(name, f"lists {len(value)} variants", f"give 1 to {MAX_ATTEMPTS}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and "attempts" in item:
            raise fail(f"{name}[{i}].attempts", "a variant cannot ask for attempts of its own", "remove it")
        try:
            out.append(parse_role_overrides({} if item is None else item, "", f"{name}[{i}]"))
        except ConfigInvalid as e:
            raise fail(e.field, e.problem, e.hint) from None
    return tuple(out)
