"""The proofs part's pure-Python figures (no database): building a day's Merkle tree, one inclusion proof, and
checking it, for 1,000 / 10,000 / 100,000 leaves (a day's statements and certificates; a month-end day of 100
clients has about 200). Median of 5 runs each. Run: .venv/bin/python bench/proofs_merkle.py"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hashinsight.billing import merkle  # a pure module: no Django setup needed


def median_ms(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus")
    for n in (1_000, 10_000, 100_000):
        leaves = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
        root = merkle.merkle_root(leaves)
        index = n * 2 // 3
        proof = merkle.inclusion_proof(leaves, index)
        assert merkle.verify(leaves[index], proof, root)
        build = median_ms(lambda leaves=leaves: merkle.merkle_root(leaves))
        prove = median_ms(lambda leaves=leaves, index=index: merkle.inclusion_proof(leaves, index))
        check = median_ms(lambda leaves=leaves, index=index, proof=proof, root=root:
                          merkle.verify(leaves[index], proof, root))  # fmt: skip
        print(f"{n:>7} leaves: root {build:8.1f} ms, one proof {prove:8.1f} ms ({len(proof)} steps), "
              f"verify {check * 1000:6.0f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
