"""Kill rate per module from a finished `mutmut run` (reads the mutants/**/*.py.meta files).

Kill rate = (killed + timed out) / (killed + timed out + survived): a mutant that hangs the tests was
noticed. "No tests" counts as survived (no test even runs the mutated function). A run that could not
start its tests (exit 255, e.g. a test id that changed since the stats run) is "not checked" and left
out of the rate, and shown, so it cannot pass for a kill. Usage: .venv/bin/python scripts/mutation_report.py
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLED = {1, 3}  # failed tests, pytest internal error
TIMED_OUT = {36, 24, -24, 152}  # SIGXCPU from mutmut's CPU or wall-clock limit
SURVIVED = {0, 5, 33}  # tests passed, or no test ran the function
SKIPPED = {34, 37}


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return config["only_mutate"]


def tally(module: str) -> Counter:
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return Counter(missing=1)
    counts: Counter = Counter()
    for exit_code in json.loads(meta.read_text())["exit_code_by_key"].values():
        if exit_code in KILLED:
            counts["killed"] += 1
        elif exit_code in TIMED_OUT:
            counts["timed out"] += 1
        elif exit_code in SURVIVED:
            counts["survived"] += 1
        elif exit_code in SKIPPED:
            counts["skipped"] += 1
        else:
            counts["not checked"] += 1  # None (run stopped early) or a crash
    return counts


def main() -> int:
    rows, total = [], Counter()
    for module in modules():
        counts = tally(module)
        total.update(counts)
        rows.append((module, counts))
    print("| module | mutants | killed | timed out | survived | not checked | kill rate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for module, c in [*rows, ("**all**", total)]:
        if c["missing"]:
            print(f"| {module} | (not run) | | | | | |")
            continue
        caught = c["killed"] + c["timed out"]
        tried = caught + c["survived"]
        rate = f"{100 * caught / tried:.1f} %" if tried else "–"
        cells = [module, tried + c["not checked"], c["killed"], c["timed out"], c["survived"], c["not checked"], rate]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
