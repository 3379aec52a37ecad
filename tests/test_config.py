"""`.gitswarm.yaml`: defaults, layering (built-in, defaults/model, the role, the goal), durations,
and errors that name the file, the field and the fix."""

from __future__ import annotations

import pytest

from gitswarm.config import DEFAULT_MODEL, Config, ConfigInvalid, RoleConfig, load_config, parse_role_overrides
from gitswarm.endpoints import Endpoint, Endpoints, EndpointsInvalid, parse_endpoints
from gitswarm.errors import FileInvalid
from gitswarm.goal import parse_goal
from gitswarm.yamlfile import load_yaml

OPENAI = {"endpoint": "default", "base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}
LOCAL = Endpoints((Endpoint("local", "http://localhost:8000/v1", "LOCAL_KEY"),
                   Endpoint("openai", "https://api.openai.com/v1", "OPENAI_API_KEY")), default="openai")


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITSWARM_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_no_file_gives_the_defaults():
    config = load_config(None)
    role = RoleConfig(model=DEFAULT_MODEL, **OPENAI)
    assert config == Config(planner=role, worker=role, judge=role)
    assert role.backend == "openai" and role.prompt_mode == "stdin"
    assert (config.debounce, config.max_depth, config.lease, config.workers) == (2.0, 2, 900.0, None)
    assert DEFAULT_MODEL == "gpt-4o-mini"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "worker:\n"])
def test_an_empty_file_gives_the_defaults(text: str):
    assert load_config(text) == load_config(None)


def test_the_default_model_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GITSWARM_MODEL", "llama3.1:8b")
    assert {load_config(None).role(r).model for r in ("planner", "worker", "judge")} == {"llama3.1:8b"}
    assert load_config("model: gpt-4o").worker.model == "gpt-4o"  # the file wins


def test_layers_defaults_then_the_role():
    config = load_config("""
defaults:
  base_url: http://localhost:8000/v1
  temperature: 0.2
  max_steps: 30
worker:
  max_steps: 80
  wall_time: 20m
  temperature: 0
judge:
  backend: command
  command: ./scripts/judge.sh
  prompt_mode: file
debounce: 500
lease: 15m
max_depth: 4
workers: 8
""", endpoints=LOCAL)
    assert config.planner == RoleConfig(model=DEFAULT_MODEL, endpoint="local", base_url="http://localhost:8000/v1",
                                        api_key_env="LOCAL_KEY", temperature=0.2, max_steps=30)
    assert config.worker == RoleConfig(model=DEFAULT_MODEL, endpoint="local", base_url="http://localhost:8000/v1",
                                       api_key_env="LOCAL_KEY", temperature=0.0, max_steps=80, wall_time=1200.0)
    assert config.judge.backend == "command" and config.judge.command == "./scripts/judge.sh"
    assert config.judge.prompt_mode == "file" and config.judge.max_steps == 30
    assert (config.debounce, config.lease, config.max_depth, config.workers) == (500.0, 900.0, 4, 8)


def test_model_names_every_roles_model():
    config = load_config("model: gpt-4o\nplanner: {model: o3}\ndefaults: {max_tokens: 1000}")
    assert (config.planner.model, config.worker.model, config.judge.model) == ("o3", "gpt-4o", "gpt-4o")
    assert config.worker.max_tokens == 1000


def test_model_may_be_a_mapping_like_defaults():
    assert load_config("model: {model: gpt-4o, temperature: 1}") == load_config(
        "defaults: {model: gpt-4o, temperature: 1}")


def test_a_command_backend_for_every_role():
    config = load_config("defaults: {backend: command, command: 'claude -p', prompt_mode: stdin}")
    assert all(config.role(r).command == "claude -p" and config.role(r).model == DEFAULT_MODEL
               and config.role(r).network == "model" for r in ("planner", "worker", "judge"))


def test_role_refuses_an_unknown_role():
    with pytest.raises(ValueError):
        load_config(None).role("reviewer")


# ---------------------------------------------------------------- a goal's overrides

def test_for_goal_applies_the_goals_models():
    config = load_config("model: gpt-4o\nworker: {max_steps: 80}")
    goal = parse_goal("goals/g.md", "---\nmodels:\n  worker: {model: o3, wall_time: 1h}\n"
                                    "  judge: {backend: command, command: ./done.sh}\n---\nBody\n")
    merged = config.for_goal(goal.models, goal.path)
    assert merged.worker == RoleConfig(model="o3", max_steps=80, wall_time=3600.0, **OPENAI)
    assert merged.judge.backend == "command" and merged.judge.command == "./done.sh"
    assert merged.planner == config.planner
    assert config.worker.model == "gpt-4o"  # the original is unchanged
    assert config.for_goal({}) is config and config.for_goal(None) is config


def test_for_goal_fills_the_model_when_a_goal_turns_a_command_role_to_openai():
    config = load_config("judge: {backend: command, command: ./j.sh, model: m1}")
    assert config.judge.model == "m1"
    assert config.for_goal({"judge": {"backend": "openai"}}).judge.model == "m1"


@pytest.mark.parametrize("models, field, problem, hint", [
    ({"worker": {"backend": "command"}}, "models.worker.command", "required when backend is command",
     "command: ./agent.sh"),
    ({"reviewer": {}}, "models.reviewer", "unknown role", "planner, worker, judge"),
    ({"worker": {"colour": "red"}}, "models.worker.colour", "unknown setting", "max_steps"),
    ({"worker": {"wall_time": "forever"}}, "models.worker.wall_time", "not a duration", "30s, 10m"),
    ({"worker": "o3"}, "models.worker", "must be a mapping", "backend, model"),
])
def test_for_goal_errors_name_the_goal(models: dict, field: str, problem: str, hint: str):
    with pytest.raises(ConfigInvalid) as raised:
        load_config(None).for_goal(models, "goals/g.md")
    assert (raised.value.path, raised.value.field) == ("goals/g.md", field)
    message, _, given_hint = str(raised.value).partition("\nhint: ")
    assert message.startswith(f"goals/g.md: {field}: ") and problem in message
    assert hint in given_hint


def test_parse_role_overrides_normalizes():
    assert parse_role_overrides({"wall_time": "1h30m", "temperature": 1, "model": None}, "f", "worker") == {
        "wall_time": 5400.0, "temperature": 1.0, "model": None}


# ---------------------------------------------------------------- errors

INVALID = [
    # (text, field, words in the message, words in the hint)
    ("colour: red", "colour", "unknown setting", "defaults, model, planner, worker, judge, debounce"),
    ("worker: {colour: red}", "worker.colour", "unknown setting", "backend, model, endpoint, base_url"),
    ("defaults: {colour: red}", "defaults.colour", "unknown setting", "backend, model"),
    ("worker: [max_steps]", "worker", "must be a mapping", "backend, model"),
    ("worker: {backend: anthropic}", "worker.backend", "'anthropic' is not a backend", "openai, command"),
    ("worker: {backend: command}", "worker.command", "required when backend is command", "command: ./agent.sh"),
    ("defaults: {backend: command}", "planner.command", "required when backend is command", "command:"),
    ("worker: {backend: command, command: '  '}", "worker.command", "must be a shell command", "as text"),
    ("worker: {command: \"a\\x07b\"}", "worker.command", "control or invisible character", "remove it"),
    ("worker: {prompt_mode: argv}", "worker.prompt_mode", "not a prompt mode", "stdin, file"),
    ("worker: {model: gpt 4o}", "worker.model", "is not valid", "without spaces"),
    ("worker: {model: 4}", "worker.model", "is not valid", "model name"),
    ("worker: {base_url: localhost:8000}", "worker.base_url", "is not valid", "http://"),
    ("worker: {api_key_env: AWS_SECRET_ACCESS_KEY}", "worker.api_key_env", "is not a setting main may give",
     "endpoints.yaml"),
    ("worker: {base_url: 'http://attacker.example/v1'}", "worker.base_url",
     "http://attacker.example/v1 is not an endpoint this host allows", "the host allows: default; its operator"),
    ("defaults: {endpoint: elsewhere}", "defaults.endpoint", "'elsewhere' is not an endpoint this host allows",
     "the host allows: default"),
    ("worker: {endpoint: 'a b'}", "worker.endpoint", "is not valid", "host's endpoints"),
    ("worker: {temperature: 2.5}", "worker.temperature", "not a temperature", "0 to 2"),
    ("worker: {temperature: hot}", "worker.temperature", "not a temperature", "0 to 2"),
    ("worker: {max_steps: 0}", "worker.max_steps", "out of range", "from 1"),
    ("worker: {max_steps: 1.5}", "worker.max_steps", "whole number", "from 1"),
    ("worker: {max_tokens: yes}", "worker.max_tokens", "whole number", "from 1"),
    ("worker: {max_output: 10}", "worker.max_output", "out of range", "from 100"),
    ("worker: {wall_time: 10 minutes}", "worker.wall_time", "'10 minutes' is not a duration", "30s, 10m, 2h"),
    ("worker: {wall_time: 0}", "worker.wall_time", "out of range", "from 1s to 7d"),
    ("worker: {timeout: 0}", "worker.timeout", "out of range", "from 1s to 1h"),
    ("defaults: {timeout: a while}", "defaults.timeout", "not a duration", "30s, 10m"),
    ("worker: {retries: -1}", "worker.retries", "out of range", "from 0 to 100"),
    ("planner: {retries: '3'}", "planner.retries", "whole number", "from 0 to 100"),
    ("defaults: {retry: 3}", "defaults.retry", "unknown setting", "did you mean 'retries'?"),
    ("debounce: soon", "debounce", "not a duration", "30s"),
    ("debounce: 2h", "debounce", "out of range", "from 0s to 1h"),
    ("lease: 0s", "lease", "out of range", "from 1s"),
    ("max_depth: 9", "max_depth", "out of range", "from 0 to 5"),
    ("workers: 0", "workers", "out of range", "from 1 to 1024"),
    ("workers: many", "workers", "whole number", "from 1 to 1024"),
    ("model: gpt-4o\ndefaults: {model: o3}", "model", "given twice", "keep one"),
    ("model: {model: o3}\ndefaults: {max_steps: 5}", "model", "given together with defaults", "one of them"),
    ("model: [o3]", "model", "is not valid", "model name"),
    # the file itself
    ("- worker", None, "must hold a YAML mapping", "the settings are"),
    ("worker: {max_steps: 1", None, "not valid YAML", "indentation"),
    ("worker:\n  max_steps: 1\n  max_steps: 2", "worker.max_steps", "given twice", "keep one"),
    ("worker: !!map {max_steps: 1}", "worker", "YAML tags are not allowed", "remove the tag"),
    ("defaults: &d {max_steps: 1}\nworker: *d", "defaults", "anchors and aliases are not allowed", "in full"),
]


@pytest.mark.parametrize("text, field, problem, hint", INVALID,
                         ids=[f"{i}-{case[1]}" for i, case in enumerate(INVALID)])
def test_invalid_configs_name_the_file_the_field_and_the_fix(text: str, field: str | None, problem: str,
                                                              hint: str):
    with pytest.raises(ConfigInvalid) as raised:
        load_config(text)
    e = raised.value
    assert (e.path, e.field) == (".gitswarm.yaml", field)
    message, _, given_hint = str(e).partition("\nhint: ")
    assert message.startswith(f".gitswarm.yaml: {field}: " if field else ".gitswarm.yaml: "), message
    assert problem in message
    assert hint in given_hint, given_hint


def test_an_endpoints_timeout_and_retries_are_layered_like_every_role_setting():
    config = load_config("defaults: {timeout: 2m30s, retries: 2}\njudge: {retries: 0}\n")
    assert (config.worker.timeout, config.worker.retries) == (150.0, 2)
    assert (config.judge.timeout, config.judge.retries) == (150.0, 0)
    assert (RoleConfig().timeout, RoleConfig().retries) == (120.0, 6)  # what OpenAIModel had built in


def test_errors_name_the_path_given():
    with pytest.raises(ConfigInvalid) as raised:
        load_config("colour: red", path="main:.gitswarm.yaml")
    assert str(raised.value).startswith("main:.gitswarm.yaml: colour: unknown setting")


def test_an_oversized_file():
    with pytest.raises(ConfigInvalid, match="the limit is 65536"):
        load_config("# " + "x" * 70_000)


def test_load_yaml_names_nested_fields():
    with pytest.raises(FileInvalid) as raised:
        load_yaml("a:\n  - {b: 1}\n  - {b: 1, b: 2}\n", "f.yaml")
    assert raised.value.field == "a[1].b"
    with pytest.raises(FileInvalid) as raised:
        load_yaml("a: [x, !!str y]", "f.yaml")
    assert raised.value.field == "a[1]"
    assert load_yaml("a: [{b: 1}, {b: 2}]\nc: {d: [1, 2]}", "f.yaml") == {"a": [{"b": 1}, {"b": 2}],
                                                                          "c": {"d": [1, 2]}}


# ---------------------------------------------------------------- the host's endpoints

def test_an_endpoint_is_chosen_by_name_or_by_its_exact_base_url():
    by_name = load_config("worker: {endpoint: local}\nplanner: {base_url: 'http://localhost:8000/v1/'}",
                          endpoints=LOCAL)
    for role in (by_name.worker, by_name.planner):
        assert (role.endpoint, role.base_url, role.api_key_env) == ("local", "http://localhost:8000/v1", "LOCAL_KEY")
    assert by_name.judge.endpoint == "openai"  # the host's default
    assert load_config("defaults: {base_url: 'http://localhost:8000/v1'}\nworker: {endpoint: openai}",
                       endpoints=LOCAL).worker.endpoint == "openai"  # the role's own section wins


def test_the_environment_is_the_host_without_a_file(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    role = load_config("defaults: {base_url: 'http://127.0.0.1:9/v1'}").worker
    assert (role.endpoint, role.base_url, role.api_key_env) == ("default", "http://127.0.0.1:9/v1", "OPENAI_API_KEY")


SAME_URL = Endpoints((Endpoint("a", "http://same/v1"), Endpoint("b", "http://same/v1/")), default="a")
NO_DEFAULT = Endpoints(LOCAL.items)


@pytest.mark.parametrize("text, host, field, problem", [
    ("worker: {endpoint: local, base_url: 'https://api.openai.com/v1'}", LOCAL, "worker.base_url",
     "is not the base_url of endpoint 'local'"),
    ("worker: {base_url: 'http://same/v1'}", SAME_URL, "worker.base_url", "is the base_url of several endpoints (a, b)"),
    ("model: gpt-4o\nworker: {endpoint: local}", NO_DEFAULT, "planner.endpoint",
     "names no endpoint, and the host has several and no default"),
])
def test_an_endpoint_choice_that_is_not_clear_is_refused(text: str, host: Endpoints, field: str, problem: str):
    with pytest.raises(ConfigInvalid) as raised:
        load_config(text, endpoints=host)
    assert raised.value.field == field and problem in str(raised.value)


def test_a_goal_chooses_among_the_same_endpoints():
    config = load_config(None, endpoints=LOCAL)
    goal = parse_goal("goals/g.md", "---\nmodels:\n  worker: {endpoint: local}\n"
                                    "  judge: {base_url: 'http://evil.example/v1'}\n---\nBody\n")
    with pytest.raises(ConfigInvalid) as raised:
        config.for_goal(goal.models, goal.path)
    assert str(raised.value).startswith("goals/g.md: models.judge.base_url: http://evil.example/v1 is not an "
                                        "endpoint this host allows")
    assert "the host allows: local, openai" in str(raised.value)
    assert config.for_goal({"worker": goal.models["worker"]}, goal.path).worker.base_url == "http://localhost:8000/v1"


def test_a_command_role_reaches_its_model_through_the_hosts_endpoint(monkeypatch: pytest.MonkeyPatch):
    """A command agent gets the role's model at the host's endpoint (gitswarm's metering proxy
    serves it to the agent), its sandbox's network limited to that endpoint by default."""
    role = load_config("worker: {backend: command, command: ./a.sh, model: m2}").worker
    assert (role.model, role.endpoint, role.api_key_env, role.network) == ("m2", "default", "OPENAI_API_KEY", "model")
    several = Endpoints((Endpoint("a", "http://a/v1"), Endpoint("b", "http://b/v1")))
    alone = load_config("defaults: {backend: command, command: ./a.sh}", endpoints=several).worker
    assert (alone.endpoint, alone.base_url, alone.network) == (None, None, "off")  # no model: no network
    off = load_config("worker: {backend: command, command: ./a.sh, network: 'off', ignore: '.aider*'}").worker
    assert (off.network, off.ignore) == ("off", (".aider*",))


def test_network_on_only_where_the_host_allows_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GITSWARM_AGENT_NETWORK", raising=False)
    with pytest.raises(ConfigInvalid) as raised:
        load_config("worker: {backend: command, command: ./a.sh, network: 'on'}")
    assert raised.value.field == "worker.network" and "GITSWARM_AGENT_NETWORK=on" in str(raised.value)
    monkeypatch.setenv("GITSWARM_AGENT_NETWORK", "on")
    assert load_config("worker: {backend: command, command: ./a.sh, network: 'on'}").worker.network == "on"


@pytest.mark.parametrize("text, field", [
    ("worker: {network: wifi}", "worker.network"),
    ("worker: {ignore: [ok, '']}", "worker.ignore[1]"),
    ("worker: {ignore: {a: 1}}", "worker.ignore"),
    ('worker: {ignore: ["a\\u001b[31m"]}', "worker.ignore[0]"),
])
def test_bad_network_and_ignore_settings_name_the_field(text: str, field: str):
    with pytest.raises(ConfigInvalid) as raised:
        load_config(text)
    assert raised.value.field == field



def test_the_host_file_is_found_where_the_operator_put_it(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from gitswarm.endpoints import load_host

    monkeypatch.delenv("GITSWARM_ENDPOINTS", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert load_host().items == (Endpoint("default", "http://127.0.0.1:9/v1", "OPENAI_API_KEY"),)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "gitswarm").mkdir()
    (tmp_path / "gitswarm" / "endpoints.yaml").write_text("endpoints:\n  local: {base_url: 'http://l/v1'}\n")
    host = load_host()
    assert (host.items, host.default) == ((Endpoint("local", "http://l/v1"),), "local")  # one: the default
    named = tmp_path / "elsewhere.yaml"
    monkeypatch.setenv("GITSWARM_ENDPOINTS", str(named))
    with pytest.raises(EndpointsInvalid, match="elsewhere.yaml: does not exist"):
        load_host()
    named.write_text("default: b\nendpoints:\n  a: {base_url: 'http://a/v1'}\n  b: {base_url: 'http://b/v1'}\n")
    assert load_host().default == "b"


@pytest.mark.parametrize("text, field, problem", [
    ("endpoints: {}", "endpoints", "must map at least one name"),
    ("endpoints: {local: {base_url: 'ftp://x'}}", "endpoints.local.base_url", "is not an http:// or https:// URL"),
    ("endpoints: {local: {base_url: 'http://x/v1', api_key_env: my-key}}", "endpoints.local.api_key_env",
     "is not the name of an environment variable"),
    ("endpoints: {local: {base_url: 'http://x/v1', key: k}}", "endpoints.local.key", "unknown field"),
    ("endpoints: {'a b': {base_url: 'http://x/v1'}}", "endpoints.a b", "is not an endpoint name"),
    ("default: other\nendpoints: {local: {base_url: 'http://x/v1'}}", "default", "is not one of the endpoints"),
    ("endpoint: {}", "endpoint", "unknown field"),
    ("endpoints: {a: {base_url: 'http://x/v1'}, a: {base_url: 'http://y/v1'}}", "endpoints.a", "given twice"),
])
def test_a_malformed_host_file_is_refused_naming_the_file_and_field(text: str, field: str, problem: str):
    with pytest.raises(EndpointsInvalid) as raised:
        parse_endpoints(text, "/etc/gitswarm/endpoints.yaml")
    assert (raised.value.path, raised.value.field) == ("/etc/gitswarm/endpoints.yaml", field)
    assert problem in str(raised.value) and "\nhint: " in str(raised.value)
