"""`.gitswarm.yaml`: defaults, layering (built-in, defaults/model, the role, the goal), durations,
and errors that name the file, the field and the fix."""

from __future__ import annotations

import pytest

from gitswarm.config import (DEFAULT_MODEL, Config, ConfigInvalid, RoleConfig, load_config, load_yaml,
                             parse_role_overrides)
from gitswarm.goal import parse_goal


@pytest.fixture(autouse=True)
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITSWARM_MODEL", raising=False)


def test_no_file_gives_the_defaults():
    config = load_config(None)
    role = RoleConfig(model=DEFAULT_MODEL)
    assert config == Config(planner=role, worker=role, judge=role)
    assert role.backend == "openai" and role.api_key_env == "OPENAI_API_KEY" and role.prompt_mode == "stdin"
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
  api_key_env: LOCAL_KEY
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
""")
    assert config.planner == RoleConfig(model=DEFAULT_MODEL, base_url="http://localhost:8000/v1",
                                        api_key_env="LOCAL_KEY", temperature=0.2, max_steps=30)
    assert config.worker == RoleConfig(model=DEFAULT_MODEL, base_url="http://localhost:8000/v1",
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
    assert all(config.role(r).command == "claude -p" and config.role(r).model is None
               for r in ("planner", "worker", "judge"))


def test_role_refuses_an_unknown_role():
    with pytest.raises(ValueError):
        load_config(None).role("reviewer")


# ---------------------------------------------------------------- a goal's overrides

def test_for_goal_applies_the_goals_models():
    config = load_config("model: gpt-4o\nworker: {max_steps: 80}")
    goal = parse_goal("goals/g.md", "---\nmodels:\n  worker: {model: o3, wall_time: 1h}\n"
                                    "  judge: {backend: command, command: ./done.sh}\n---\nBody\n")
    merged = config.for_goal(goal.models, goal.path)
    assert merged.worker == RoleConfig(model="o3", max_steps=80, wall_time=3600.0)
    assert merged.judge.backend == "command" and merged.judge.command == "./done.sh"
    assert merged.planner == config.planner
    assert config.worker.model == "gpt-4o"  # the original is unchanged
    assert config.for_goal({}) is config and config.for_goal(None) is config


def test_for_goal_fills_the_model_when_a_goal_turns_a_command_role_to_openai():
    config = load_config("judge: {backend: command, command: ./j.sh}")
    assert config.judge.model is None
    assert config.for_goal({"judge": {"backend": "openai"}}).judge.model == DEFAULT_MODEL


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
    ("worker: {colour: red}", "worker.colour", "unknown setting", "backend, model, base_url"),
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
    ("worker: {api_key_env: my-key}", "worker.api_key_env", "is not valid", "environment variable"),
    ("worker: {temperature: 2.5}", "worker.temperature", "not a temperature", "0 to 2"),
    ("worker: {temperature: hot}", "worker.temperature", "not a temperature", "0 to 2"),
    ("worker: {max_steps: 0}", "worker.max_steps", "out of range", "from 1"),
    ("worker: {max_steps: 1.5}", "worker.max_steps", "whole number", "from 1"),
    ("worker: {max_tokens: yes}", "worker.max_tokens", "whole number", "from 1"),
    ("worker: {max_output: 10}", "worker.max_output", "out of range", "from 100"),
    ("worker: {wall_time: 10 minutes}", "worker.wall_time", "'10 minutes' is not a duration", "30s, 10m, 2h"),
    ("worker: {wall_time: 0}", "worker.wall_time", "out of range", "from 1s to 7d"),
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


def test_errors_name_the_path_given():
    with pytest.raises(ConfigInvalid) as raised:
        load_config("colour: red", path="main:.gitswarm.yaml")
    assert str(raised.value).startswith("main:.gitswarm.yaml: colour: unknown setting")


def test_an_oversized_file():
    with pytest.raises(ConfigInvalid, match="the limit is 65536"):
        load_config("# " + "x" * 70_000)


def test_load_yaml_names_nested_fields():
    with pytest.raises(ConfigInvalid) as raised:
        load_yaml("a:\n  - {b: 1}\n  - {b: 1, b: 2}\n", "f.yaml")
    assert raised.value.field == "a[1].b"
    with pytest.raises(ConfigInvalid) as raised:
        load_yaml("a: [x, !!str y]", "f.yaml")
    assert raised.value.field == "a[1]"
    assert load_yaml("a: [{b: 1}, {b: 2}]\nc: {d: [1, 2]}", "f.yaml") == {"a": [{"b": 1}, {"b": 2}],
                                                                          "c": {"d": [1, 2]}}
