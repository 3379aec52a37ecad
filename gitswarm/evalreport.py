"""What `gitswarm eval` reports, computed from its results document alone (gitswarm/eval.py), so
that `gitswarm eval --from results.json` rebuilds the same table and chart: per variant, overall
and per goal, the success rate by the hidden check with a Wilson 95 % interval, wall time, tokens
and cost per success, tasks and landings, and the judge's accuracy: a false done is a `done`
verdict on a tree the hidden check fails; a false continue/stop is a continue or stop verdict on
a tree it passes (each verdict is checked on main's tree at its time: gitswarm/evalcheck.py).
Pure but for the writers; `write_png` needs matplotlib (the `bench` extra)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .errors import FileInvalid, GitswarmError
from .names import NAME_RE

FORMAT = "gitswarm-eval/1"
Z95 = 1.959963984540054
ALL = "all"
COLUMNS = ("variant", "goal", "success", "95% CI", "wall s", "tokens/success", "cost/success", "tasks", "landed",
           "false done", "false continue/stop", "judge accuracy", "errors")


NUMBER = (int, float)
GOAL_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,)}
VARIANT_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,), "price": (*NUMBER, type(None))}
RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "variant": (str,), "goal": (str,), "trial": (int,), "passed": (bool,), "judge": (str, type(None)),
    "wall": NUMBER, "tokens": (int,), "tasks": (int,), "landed": (int,), "timed_out": (bool,),
    "error": (str, type(None)), "cost": (*NUMBER, type(None))}


class NoMatplotlib(GitswarmError):
    """The chart needs matplotlib, which is not installed."""


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (0, 1 when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, center - half)  # exact at the ends, not 0.9999999999999999
    return low, 1.0 if successes == n else min(1.0, center + half)


def stats(results: list[dict[str, Any]], price: float | None) -> dict[str, Any]:
    """The figures of a set of trials (one goal of one variant, or all its goals)."""
    n = len(results)
    wins = sum(bool(r["passed"]) for r in results)
    low, high = wilson(wins, n)
    tokens = sum(int(r["tokens"]) for r in results)
    costs = [r.get("cost") for r in results]  # what the board kept (the roles' price or the endpoint's word)
    cost = tokens * price / 1e6 if price is not None else \
        sum(costs) if results and all(isinstance(c, NUMBER) for c in costs) else None
    judged = [v for r in results for v in verdicts(r)]
    false_done = sum(v["decision"] == "done" and not v["passed"] for v in judged)
    false_other = sum(v["decision"] in ("continue", "stop") and bool(v["passed"]) for v in judged)
    return {
        "trials": n, "successes": wins, "rate": _r(wins / n if n else 0.0), "ci": [_r(low), _r(high)],
        "wall_mean": _r(sum(float(r["wall"]) for r in results) / n if n else 0.0),
        "tokens": tokens, "tokens_per_success": _r(tokens / wins) if wins else None,
        "cost_per_success": _r(cost / wins, 6) if wins and cost is not None else None,
        "tasks_mean": _r(sum(int(r["tasks"]) for r in results) / n if n else 0.0),
        "landed_mean": _r(sum(int(r["landed"]) for r in results) / n if n else 0.0),
        "verdicts": len(judged), "false_done": false_done, "false_continue_stop": false_other,
        "judge_accuracy": _r((len(judged) - false_done - false_other) / len(judged)) if judged else None,
        "errors": sum(r["error"] is not None for r in results),
        "timeouts": sum(bool(r["timed_out"]) for r in results),
    }


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A trial's verdicts with the hidden check's answer on the tree each saw (None: main had no
    commit then, not counted); a result without them (written by hand) counts its last verdict."""
    if "verdicts" in result:
        return [v for v in result["verdicts"] if v.get("passed") is not None]
    return [{"decision": result["judge"], "passed": result["passed"]}] if result["judge"] is not None else []


def _r(value: float, digits: int = 4) -> float:
    return round(value, digits)


def summarize(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> goal (and "all") -> stats, in the document's order."""
    goals = [g["name"] for g in doc["goals"]]
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for variant in doc["variants"]:
        mine = [r for r in doc["results"] if r["variant"] == variant["name"]]
        rows = {ALL: stats(mine, variant["price"])}
        rows.update({g: stats([r for r in mine if r["goal"] == g], variant["price"]) for g in goals})
        summary[variant["name"]] = rows
    return summary


def markdown(doc: dict[str, Any]) -> str:
    """One comparison table: every variant over all goals, then goal by goal, variants side by side."""
    summary = summarize(doc)
    lines = [f"# gitswarm eval: suite {doc['suite']}, {doc['trials_per_goal']} trial(s) per goal and variant", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for goal in [ALL, *(g["name"] for g in doc["goals"])]:
        for variant, rows in summary.items():
            s = rows[goal]
            cells = [variant, goal if goal != ALL else "**all**", f"{s['successes']}/{s['trials']} ({s['rate']:.0%})",
                     f"{s['ci'][0]:.0%}-{s['ci'][1]:.0%}", f"{s['wall_mean']:.1f}", _num(s["tokens_per_success"], 0),
                     "-" if s["cost_per_success"] is None else f"${s['cost_per_success']:.4f}",
                     f"{s['tasks_mean']:.1f}", f"{s['landed_mean']:.1f}", str(s["false_done"]),
                     str(s["false_continue_stop"]),
                     "-" if s["judge_accuracy"] is None else f"{s['judge_accuracy']:.0%} of {s['verdicts']}",
                     str(s["errors"])]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "success: the hidden check passed on main's final tree; 95% CI: Wilson; wall s: mean per trial; "
              "tasks, landed: mean per trial; false done: done verdicts on a tree the check failed; "
              "false continue/stop: continue or stop verdicts on a tree it passed; judge accuracy: the other "
              "verdicts, of all (each verdict judged on main's tree at its time).", ""]
    return "\n".join(lines)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def with_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The results document with its summary (recomputed: a summary in the input is not trusted)."""
    return {**{k: v for k, v in doc.items() if k != "summary"}, "summary": summarize(doc)}


def read_results(path: Path) -> dict[str, Any]:
    """A results document written by `gitswarm eval`; GitswarmError naming the file otherwise."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GitswarmError(f"{path}: not a results file: {e}", "give the results.json `gitswarm eval` wrote") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not all(
            isinstance(doc.get(k), list) for k in ("goals", "variants", "results")):
        raise GitswarmError(f"{path}: not a {FORMAT} results file",
                            "give the results.json `gitswarm eval --out DIR` wrote")
    for where, items, fields in (("goals", doc["goals"], GOAL_FIELDS), ("variants", doc["variants"], VARIANT_FIELDS),
                                 ("results", doc["results"], RESULT_FIELDS)):
        for i, item in enumerate(items):
            for key, kinds in fields.items():
                value = item.get(key) if isinstance(item, dict) else None
                if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds \
                        or key in ("name", "variant", "goal") and not NAME_RE.match(value):
                    raise FileInvalid(str(path), f"{where}[{i}].{key}", f"{value!r} is not what `gitswarm eval` writes",
                                      "give the results.json `gitswarm eval --out DIR` wrote, unedited")
    if not isinstance(doc.get("suite"), str) or not isinstance(doc.get("trials_per_goal"), int):
        raise FileInvalid(str(path), "suite", "the suite's name and trials_per_goal are missing",
                          "give the results.json `gitswarm eval --out DIR` wrote, unedited")
    return doc


def write_png(doc: dict[str, Any], path: Path) -> None:
    """A bar chart of success rates with their intervals, per goal and overall, variants side by
    side. NoMatplotlib when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NoMatplotlib("no PNG: matplotlib is not installed",
                           "pip install matplotlib (or gitswarm[bench]), then `gitswarm eval --from "
                           "results.json --out DIR` draws it from the results") from None
    summary = summarize(doc)
    goals = [ALL, *(g["name"] for g in doc["goals"])]
    width = 0.8 / max(1, len(summary))
    fig, (ax, judge) = plt.subplots(1, 2, figsize=(max(8.0, 1.1 * len(goals) + 4), 4.5),
                                    gridspec_kw={"width_ratios": [max(3, len(goals)), 2]})
    for i, (variant, rows) in enumerate(summary.items()):
        xs = [g + (i - (len(summary) - 1) / 2) * width for g in range(len(goals))]
        rates = [rows[g]["rate"] for g in goals]
        errors = [[rows[g]["rate"] - rows[g]["ci"][0] for g in goals],
                  [rows[g]["ci"][1] - rows[g]["rate"] for g in goals]]
        ax.bar(xs, rates, width, yerr=errors, capsize=3, label=variant)
    ax.set_xticks(range(len(goals)), goals, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (hidden check), 95% Wilson CI")
    ax.set_title(f"gitswarm eval: {doc['suite']}, {doc['trials_per_goal']} trial(s) each")
    ax.legend()
    names = list(summary)
    overall = [summary[v][ALL] for v in names]
    share = [[s[key] / s["verdicts"] if s["verdicts"] else 0.0 for s in overall]
             for key in ("false_done", "false_continue_stop")]
    judge.bar(names, share[0], label="false done", color="tab:red")
    judge.bar(names, share[1], bottom=share[0], label="false continue/stop", color="tab:gray")
    judge.set_ylim(0, 1.05)
    judge.set_ylabel("share of the judge's verdicts")
    judge.set_title("the judge's mistakes")
    judge.tick_params(axis="x", rotation=30)
    judge.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_json(doc: dict[str, Any], path: Path) -> None:
    """The document with its summary, replacing `path` whole (a reader never sees half a file)."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(with_summary(doc), indent=2, sort_keys=True) + "\n")
    os.replace(part, path)


def write_all(doc: dict[str, Any], out: Path) -> list[str]:
    """results.json (with its summary), results.md and results.png in `out`; what was written, as
    lines to say (the PNG's absence, with why, among them)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(doc, out / "results.json")
    (out / "results.md").write_text(markdown(doc))
    said = [f"wrote {out / 'results.json'}", f"wrote {out / 'results.md'}"]
    try:
        write_png(doc, out / "results.png")
        said.append(f"wrote {out / 'results.png'}")
    except NoMatplotlib as e:
        said.append(f"{e.message} (hint: {e.hint})")
    return said
