"""Runs every benchmark in this folder, one after the other."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
for script in ("miners_list.py", "bulk_import.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True, cwd=HERE)
