"""mini-swe-agent (https://mini-swe-agent.com, 2.4) as a gitswarm command agent.

    worker: {backend: command, network: model, model: gpt-4o-mini,
             command: "${GITSWARM_PYTHON:-python3} -m gitswarm.recipes.mini --step-limit 40"}

Runs mini's default agent (its `mini_textbased` config: one bash block a reply) on the prompt in
$GITSWARM_PROMPT_FILE, in the current folder, with the model $GITSWARM_MODEL at $OPENAI_BASE_URL
(gitswarm's metering proxy) through litellm's OpenAI-compatible provider. Offline but for that:
no start-up banner, no config wizard, litellm's cost map read from the package (never fetched),
no colour. Its trajectory goes to $GITSWARM_RUN_DIR/mini.traj.json; from it the result file
($GITSWARM_RESULT_FILE) is written:

- Submitted: done, with what it submitted as the summary (else its last thought); a summary
  starting with FAILED: is a failure;
- a step, cost or time limit, or replies out of mini's format: failed, saying which;
- the model unreachable or failing (connection, timeout, 5xx, 429): handback, exit 75;
- anything else: failed, exit 1.

Tokens come from the trajectory's `usage` (gitswarm counts them itself at the proxy anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

HANDBACK_EXIT = 75  # gitswarm.agents.contract.HANDBACK_EXIT (not imported: mini's imports come first)
TRAJECTORY = "mini.traj.json"
UNAVAILABLE = frozenset({"APIConnectionError", "InternalServerError", "ServiceUnavailableError", "BadGatewayError",
                         "Timeout", "APITimeoutError", "RateLimitError"})
QUIET = {"MSWEA_SILENT_STARTUP": "1", "MSWEA_COST_TRACKING": "ignore_errors", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
         "LITELLM_TELEMETRY": "False", "NO_COLOR": "1", "TERM": "dumb", "PAGER": "cat"}
FINISH_NOTE = ("\n\n# Finishing, in this agent\n\nWhen you are done, run `printf 'COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
               "\\n%s\\n' 'your summary'` as a command of its own: the summary is what you submit. If you cannot "
               "do the task, submit a summary that starts with `FAILED:`.\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m gitswarm.recipes.mini", description=__doc__.split("\n\n")[0])
    p.add_argument("--step-limit", type=int, default=int(env("GITSWARM_MINI_STEP_LIMIT", "50")),
                   help="model calls at most (0: no limit; env GITSWARM_MINI_STEP_LIMIT)")
    p.add_argument("--cost-limit", type=float, default=float(env("GITSWARM_MINI_COST_LIMIT", "3")),
                   help="dollars at most, as litellm prices the model (0: no limit; env GITSWARM_MINI_COST_LIMIT)")
    p.add_argument("--retries", type=int, default=int(env("GITSWARM_MINI_RETRIES", "3")),
                   help="tries per model call before the task is handed back (env GITSWARM_MINI_RETRIES)")
    p.add_argument("--command-timeout", type=int, default=int(env("GITSWARM_MINI_COMMAND_TIMEOUT", "120")),
                   help="seconds a bash command of the agent may run")
    p.add_argument("--config", default=env("GITSWARM_MINI_CONFIG", "mini_textbased"),
                   help="mini's config (a builtin name or a YAML file) for its templates")
    p.add_argument("--model-class", default=env("GITSWARM_MINI_MODEL_CLASS", "litellm_textbased"),
                   help="mini's model class (litellm_textbased: bash blocks; litellm: tool calls)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = Path(os.environ.get("GITSWARM_RUN_DIR") or ".")
    result_file = Path(os.environ.get("GITSWARM_RESULT_FILE") or run_dir / "result.json")
    trajectory = run_dir / TRAJECTORY
    model = os.environ.get("GITSWARM_MODEL")
    if not model or not os.environ.get("OPENAI_BASE_URL"):
        return answer(result_file, {"status": "failed", "summary": "mini: no model to call: give the role a model: "
                                    "and network: model (GITSWARM_MODEL and OPENAI_BASE_URL are unset)"}, 1)
    quiet(args, run_dir)
    try:
        traj = run_mini(args, model, trajectory)
    except Exception as e:  # mini raised after saving its trajectory (it does for a model error)
        traj = load(trajectory) or {"info": {"exit_status": type(e).__name__}, "messages": []}
        traj.setdefault("info", {}).setdefault("exception_str", str(e))
    said, code = outcome(traj, model)
    return answer(result_file, said, code)


def quiet(args: argparse.Namespace, run_dir: Path) -> None:
    """mini and litellm offline and plain: set before they are imported."""
    os.environ.pop("FORCE_COLOR", None)
    os.environ.update(QUIET)
    os.environ["MSWEA_GLOBAL_CONFIG_DIR"] = str(run_dir / "mini-config")  # its .env: never the host's
    os.environ["MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT"] = str(max(1, args.retries))


def run_mini(args: argparse.Namespace, model: str, trajectory: Path) -> dict[str, Any]:
    import litellm
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.config import get_config_from_spec
    from minisweagent.environments.local import LocalEnvironment
    from minisweagent.models import get_model

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    config = get_config_from_spec(args.config)
    model_config = {**config.get("model", {}), "model_class": args.model_class,
                    "model_kwargs": {"api_base": os.environ["OPENAI_BASE_URL"],
                                     "api_key": os.environ.get("OPENAI_API_KEY") or "none", "max_retries": 0}}
    agent_config = {k: v for k, v in config.get("agent", {}).items() if k != "mode"}
    agent_config.update(step_limit=args.step_limit, cost_limit=args.cost_limit, output_path=trajectory)
    env_config = {**config.get("environment", {}), "timeout": args.command_timeout, "cwd": os.getcwd()}
    agent = DefaultAgent(get_model(f"openai/{model}", model_config), LocalEnvironment(**env_config), **agent_config)
    prompt = Path(os.environ["GITSWARM_PROMPT_FILE"]).read_text(encoding="utf-8", errors="replace")
    agent.run(prompt + FINISH_NOTE)
    return load(trajectory) or agent.serialize()


def load(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def outcome(traj: dict[str, Any], model: str) -> tuple[dict[str, Any], int]:
    """(the result file's content, the exit status) from mini's trajectory."""
    info = traj.get("info") or {}
    status = str(info.get("exit_status") or "")
    messages = [m for m in traj.get("messages") or [] if isinstance(m, dict)]
    said: dict[str, Any] = {"model": model.replace(" ", "") or "mini", **tokens(messages)}
    cost = (info.get("model_stats") or {}).get("instance_cost")
    if isinstance(cost, (int, float)) and cost > 0:
        said["cost"] = float(cost)
    calls = (info.get("model_stats") or {}).get("api_calls", 0)
    agent = (info.get("config") or {}).get("agent") or {}
    last = next((m for m in reversed(messages) if m.get("role") == "exit"), {})
    why = str((last.get("extra") or {}).get("exception_str") or info.get("exception_str") or last.get("content") or "")
    if status == "Submitted":
        summary = str(info.get("submission") or "").strip() or last_thought(messages) or "mini-swe-agent submitted"
        failed = summary.upper().startswith("FAILED:")
        return {**said, "status": "failed" if failed else "done", "summary": summary}, 0
    if status == "LimitsExceeded":
        which = (f"its step limit ({agent.get('step_limit')} model calls)" if calls >= (agent.get("step_limit") or 1e18)
                 else f"its cost limit (${agent.get('cost_limit')})")
        return {**said, "status": "failed", "summary": f"mini-swe-agent stopped at {which} before it submitted"}, 0
    if status == "TimeExceeded":
        return {**said, "status": "failed", "summary": "mini-swe-agent ran out of wall time before it submitted"}, 0
    if status == "RepeatedFormatError":
        return {**said, "status": "failed", "summary": "the model's replies were not in mini's format "
                "(one bash block a reply) several times in a row"}, 0
    if status in UNAVAILABLE:
        return {**said, "status": "handback", "summary": f"the model is unavailable ({status}): {why[:500]}"}, \
            HANDBACK_EXIT
    return {**said, "status": "failed", "summary": f"mini-swe-agent stopped: {status or 'no exit status'}: "
            f"{why[:1000]}"}, 1


def tokens(messages: list[dict[str, Any]]) -> dict[str, int]:
    """Prompt and completion tokens summed over the responses the trajectory kept."""
    used = {"tokens_in": 0, "tokens_out": 0}
    for m in messages:
        usage = (((m.get("extra") or {}).get("response") or {}) if isinstance(m.get("extra"), dict) else {})
        usage = usage.get("usage") if isinstance(usage, dict) else None
        if isinstance(usage, dict):
            for key, name in (("tokens_in", "prompt_tokens"), ("tokens_out", "completion_tokens")):
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    used[key] += value
    return used


def last_thought(messages: list[dict[str, Any]]) -> str:
    """The last reply's text without its bash block."""
    for m in reversed(messages):
        if m.get("role") == "assistant" and isinstance(m.get("content"), str):
            return re.sub(r"```.*?```", "", m["content"], flags=re.DOTALL).strip()[:2000]
    return ""


def answer(path: Path, said: dict[str, Any], code: int) -> int:
    path.write_text(json.dumps(said), encoding="utf-8")
    print(f"mini: {said['status']}: {said.get('summary', '')[:500]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
