"""The agent backends, by the name a role's `backend:` setting gives (gitswarm.config.BACKENDS), and
how each makes the model of gitswarm's tool loop (gitswarm.agents.run_agent).

A model backend maps to a function from the role's settings to its ChatModel. The `command` backend
maps to None: its agent is a program (gitswarm.agents.command, under the contract of
gitswarm.agents.contract) and brings its own model; `RoleConfig.runs_command` says which roles run
one, and the roles ask that (the prompt variant, the sandbox, the verdict).

To add a model backend: its ChatModel in a module of this package, its name in config.BACKENDS (the
settings it accepts), and its maker in MODELS below (tests/test_agents.py checks the two agree).
"""

from __future__ import annotations

import os
from typing import Callable

from ..config import DEFAULT_MODEL, RoleConfig
from ..errors import GitswarmError
from . import ChatModel


def openai_model(role: RoleConfig) -> ChatModel:
    """The role's model at the host endpoint its settings chose (gitswarm.config), with the key in
    that endpoint's variable of the host's environment, and no other: an endpoint without one gets
    a placeholder, never the client's own $OPENAI_API_KEY."""
    from .openai_backend import PLACEHOLDER_KEY, OpenAIModel

    if not role.base_url:
        raise GitswarmError(f"no endpoint was chosen for model {role.model!r}",
                            "load the settings with the host's endpoints (gitswarm.config.load_config)")
    key = os.environ.get(role.api_key_env) if role.api_key_env else None
    return OpenAIModel(role.model or DEFAULT_MODEL, base_url=role.base_url, api_key=key or PLACEHOLDER_KEY,
                       temperature=role.temperature, timeout=role.timeout, max_retries=role.retries)


# backend name -> how its model is made (None: the agent is a program with a model of its own)
MODELS: dict[str, Callable[[RoleConfig], ChatModel] | None] = {
    "openai": openai_model,
    "command": None,
}


def make_model(role: RoleConfig) -> ChatModel:
    """The model of a role whose agent is gitswarm's tool loop, made by its backend."""
    maker = MODELS.get(role.backend)
    if maker is None:
        models = ", ".join(name for name, made in MODELS.items() if made is not None)
        raise GitswarmError(f"backend {role.backend!r} has no model for gitswarm's tool loop",
                            f"its agent runs as a program (gitswarm.agents.command); the model backends are: "
                            f"{models}")
    return maker(role)
