"""``python -m edge.simulator`` with a record of every write command the simulated miners carry out: the
benchmarks' ground truth for "no target executed twice" (the simulator keeps no command log of its own).

    python bench/_sim_recorder.py --record FILE [any python -m edge.simulator argument]

Each write (set_fan, power_mode, hashing_disable, …) appends one JSON line {"t": wall seconds, "serial",
"command", "parameter", "code", "ok"} to FILE, flushed at once (``ok`` false: the firmware refused it, e.g.
set_fan on a hydro-cooled miner); reads are not recorded. Nothing else changes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.simulator import api, cli


def main() -> int:
    argv = sys.argv[1:]
    if "--record" not in argv:
        sys.exit("--record FILE is required")
    at = argv.index("--record")
    path = Path(argv[at + 1])
    del argv[at : at + 2]
    out = path.open("a", encoding="utf-8", buffering=1)
    original = api._write

    def recording_write(miner, t, command, parameter):
        reply = original(miner, t, command, parameter)
        status = (reply.get("STATUS") or [{}])[0]
        line = {"t": time.time(), "serial": miner.serial, "command": command, "parameter": parameter,
                "code": status.get("Code"), "ok": status.get("STATUS") == "S"}  # fmt: skip
        out.write(json.dumps(line) + "\n")
        return reply

    api._write = recording_write  # api.dispatch looks _write up at each call
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
