"""Kill rate per module from a finished `mutmut run` (reads the mutants/**/*.py.meta files).

Timeouts count as killed (the mutant hung the tests: they noticed); "no tests" counts as survived
(no test even runs the mutated function). Usage: .venv/bin/python scripts/mutation_report.py
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLED = {1, 3, 36, 24, -24, 152, 255}  # failed tests, pytest internal error, timeouts
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
    print(
        "| module | mutants | killed | survived | not checked | kill rate |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    for module, c in [*rows, ("**all**", total)]:
        if c["missing"]:
            print(f"| {module} | (not run) | | | | |")
            continue
        tried = c["killed"] + c["survived"]
        rate = f"{100 * c['killed'] / tried:.1f} %" if tried else "–"
        print(
            f"| {module} | {tried + c['not checked']} | {c['killed']} | {c['survived']} | {c['not checked']} | {rate} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
