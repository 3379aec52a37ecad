"""The model endpoints a host allows, and the variables holding their keys: the host's own choice,
never main's. A host file, `$GITSWARM_ENDPOINTS` or else `$XDG_CONFIG_HOME/gitswarm/endpoints.yaml`
(default `~/.config/gitswarm/endpoints.yaml`), read by the serving or worker process:

    default: local                  # optional: the endpoint roles use when main names none
    endpoints:
      local:  {base_url: http://127.0.0.1:8000/v1, api_key_env: LOCAL_LLM_KEY}   # api_key_env may be null
      openai: {base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY}

Without a host file the host allows one endpoint, `default`: the base URL in $OPENAI_BASE_URL (or
OpenAI's), its key in $OPENAI_API_KEY. `.gitswarm.yaml` and a goal's `models:` choose among these
(`endpoint: <name>`, or the exact `base_url:` of one); see gitswarm.config. `Endpoints.choose` is pure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import FileInvalid
from .validate import Fields, shown, typename
from .yamlfile import load_yaml

ENDPOINTS_ENV = "GITSWARM_ENDPOINTS"
OPENAI_URL = "https://api.openai.com/v1"  # the openai client's own default
DEFAULT_NAME = "default"
FIELDS = ("default", "endpoints")
ENDPOINT_FIELDS = ("base_url", "api_key_env")
MAX_ENDPOINTS = 100
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
URL_RE = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,2000}\Z")
HOST_FILE_HINT = "~/.config/gitswarm/endpoints.yaml"


class EndpointsInvalid(FileInvalid):
    """The host's endpoints file breaks the rules."""


@dataclass(frozen=True)
class Endpoint:
    """A model endpoint the host allows: where (`base_url`) and which of the host's environment
    variables holds its key (`api_key_env`; None: the endpoint gets no key)."""

    name: str
    base_url: str
    api_key_env: str | None = None


@dataclass(frozen=True)
class Endpoints:
    """Every endpoint a host allows, by name, and the one roles use when main names none
    (`default`; None: main must name one). `origin` says where they came from, for hints."""

    items: tuple[Endpoint, ...]
    default: str | None = None
    origin: str = HOST_FILE_HINT

    def get(self, name: str) -> Endpoint | None:
        return next((e for e in self.items if e.name == name), None)

    def names(self) -> str:
        return ", ".join(e.name for e in self.items)

    def hint(self) -> str:
        return f"the host allows: {self.names()}; its operator lists endpoints in {self.origin}"

    def choose(self, name: str | None, url: str | None, field_name: str,
               fail: Callable[[str | None, str, str | None], Exception]) -> str | None:
        """The host endpoint that main's settings choose: by `name` (`<field>.endpoint`), or by its
        exact `url` (`<field>.base_url`, compared without a trailing slash). None when they name none.
        Anything else is refused: a URL the host does not list never receives a request or a key."""
        prefix = f"{field_name}." if field_name else ""
        if name is not None and self.get(name) is None:
            raise fail(f"{prefix}endpoint", f"{name!r} is not an endpoint this host allows", self.hint())
        if url is None:
            return name
        matching = [e.name for e in self.items if e.base_url.rstrip("/") == url.rstrip("/")]
        if not matching:
            raise fail(f"{prefix}base_url", f"{url} is not an endpoint this host allows",
                       f"name one with endpoint: <name>; {self.hint()}")
        if name is not None:
            if name not in matching:
                raise fail(f"{prefix}base_url", f"{url} is not the base_url of endpoint {name!r}",
                           "give endpoint: alone")
            return name
        if len(matching) > 1:
            raise fail(f"{prefix}base_url", f"{url} is the base_url of several endpoints ({', '.join(matching)})",
                       "choose one with endpoint: <name> instead")
        return matching[0]


def from_environment(environ: Mapping[str, str] | None = None) -> Endpoints:
    """The endpoints of a host without a file: one, `default`, at $OPENAI_BASE_URL (else OpenAI's),
    its key in $OPENAI_API_KEY."""
    environ = os.environ if environ is None else environ
    url = (environ.get("OPENAI_BASE_URL") or "").strip() or OPENAI_URL
    return Endpoints((Endpoint(DEFAULT_NAME, url, "OPENAI_API_KEY"),), DEFAULT_NAME)


def host_file(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """Where this host's endpoints file is, and whether the operator named it ($GITSWARM_ENDPOINTS)."""
    environ = os.environ if environ is None else environ
    if environ.get(ENDPOINTS_ENV):
        return Path(environ[ENDPOINTS_ENV]).expanduser(), True
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config_home) / "gitswarm" / "endpoints.yaml", False


def load_host(environ: Mapping[str, str] | None = None) -> Endpoints:
    """This host's endpoints: its file when there is one, else its environment. A file named by
    $GITSWARM_ENDPOINTS must exist. Raises EndpointsInvalid naming the file and field."""
    path, named = host_file(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named:
            raise EndpointsInvalid(str(path), None, "does not exist",
                                   f"write it, or unset {ENDPOINTS_ENV} to use {HOST_FILE_HINT} "
                                   "(or, without that file, OPENAI_BASE_URL and OPENAI_API_KEY)") from None
        return from_environment(environ)
    except (OSError, UnicodeDecodeError) as e:
        raise EndpointsInvalid(str(path), None, f"cannot be read: {e}", "check its permissions") from None
    return parse_endpoints(text, str(path))


def parse_endpoints(text: str, path: str) -> Endpoints:
    """Parse and validate a host's endpoints file (see the module docstring)."""
    def fail(field_name: str | None, problem: str, hint: str | None = None) -> EndpointsInvalid:
        return EndpointsInvalid(path, field_name, problem, hint)

    doc = load_yaml(text, path, fail)
    if not isinstance(doc, dict):
        raise fail(None, f"must hold a YAML mapping, not {typename(doc)}",
                   "write `endpoints:` with one `<name>: {base_url: ..., api_key_env: ...}` per endpoint")
    Fields(fail).known_keys(None, doc, FIELDS)
    listed = doc.get("endpoints")
    if not isinstance(listed, dict) or not listed:
        raise fail("endpoints", "must map at least one name to an endpoint",
                   "write endpoints: {local: {base_url: 'http://127.0.0.1:8000/v1', api_key_env: null}}")
    if len(listed) > MAX_ENDPOINTS:
        raise fail("endpoints", f"lists {len(listed)} endpoints; the limit is {MAX_ENDPOINTS}", "list fewer")
    items = tuple(_endpoint(name, value, fail) for name, value in listed.items())
    default = doc.get("default")
    if default is not None and (not isinstance(default, str) or default not in listed):
        raise fail("default", f"{shown(default)} is not one of the endpoints",
                   f"name one of: {', '.join(str(n) for n in listed)}")
    if default is None and len(items) == 1:
        default = items[0].name
    return Endpoints(items, default, origin=path)


def _endpoint(name: Any, value: Any, fail: Callable[..., EndpointsInvalid]) -> Endpoint:
    where = f"endpoints.{name}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise fail(where, f"{shown(name)} is not an endpoint name",
                   "letters, digits, '.', '_' or '-', up to 64, starting with a letter or digit")
    if not isinstance(value, dict):
        raise fail(where, f"must be a mapping, not {typename(value)}", "write {base_url: ..., api_key_env: ...}")
    Fields(fail).known_keys(where, value, ENDPOINT_FIELDS, "an endpoint holds")
    url = value.get("base_url")
    if not isinstance(url, str) or not URL_RE.match(url):
        raise fail(f"{where}.base_url", f"{shown(url)} is not an http:// or https:// URL",
                   "e.g. base_url: http://127.0.0.1:8000/v1")
    key_env = value.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not ENV_RE.match(key_env)):
        raise fail(f"{where}.api_key_env", f"{shown(key_env)} is not the name of an environment variable",
                   "e.g. api_key_env: LOCAL_LLM_KEY, or null for an endpoint that takes no key")
    return Endpoint(name, url, key_env)
