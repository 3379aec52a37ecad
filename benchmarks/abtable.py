"""speed_all.sh's A/B of the per-push rows: AFTER's benchmarks/speed.py run on BEFORE's code and on
AFTER's, alternately, some rounds (the machine's load drifts over a run, and a row measured once
a side moves with it). Per row and side: each round's median, the median of those, and after /
before.

    python benchmarks/abtable.py OUT     # OUT: speed_all.sh's folder, with speed-ab<r>-<side>.log
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

SIDES = ("before", "after")


def medians(log: Path) -> dict[str, float]:
    """Row -> its first column's median (ms) in one speed.py table."""
    found: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0].startswith(("hub:", "plain", "pre-receive", "post-receive")):
            try:
                found[cells[0]] = float(cells[1])
            except ValueError:
                pass
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    runs = {side: [medians(p) for p in sorted(out.glob(f"speed-ab*-{side}.log"))] for side in SIDES}
    if not all(runs.values()):
        print(f"no speed-ab logs of both sides in {out}", file=sys.stderr)
        return 1
    print(f"{len(runs['before'])} rounds a side, alternated; ms, each round's median (the median of them)\n")
    print("| row | before | after | after / before |\n|---|---|---|---|")
    for row in runs["after"][0]:
        per = {side: [r[row] for r in runs[side] if row in r] for side in SIDES}
        if not all(per.values()):
            continue
        mid = {side: statistics.median(per[side]) for side in SIDES}
        cells = [f"{', '.join(f'{x:.1f}' for x in per[side])} (**{mid[side]:.1f}**)" for side in SIDES]
        print(f"| {row} | {cells[0]} | {cells[1]} | {mid['after'] / mid['before']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
