"""Runs every benchmark in this folder, one after the other (the heavy ones too: give it a quiet box
and about half an hour)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = (
    "miners_list.py", "bulk_import.py", "dashboard.py", "csv_export.py", "db_connections.py", "outbox_throughput.py",
    "ws_fanout.py", "alert_fanout.py", "ingest_bench.py", "rollup_bench.py", "telemetry_query_bench.py",
    "telemetry_live_page_bench.py", "commands_roundtrip.py", "commands_concurrency.py",
)  # fmt: skip
failed = []
for script in SCRIPTS:
    print(f"== {script}", flush=True)
    if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE).returncode:
        failed.append(script)
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
