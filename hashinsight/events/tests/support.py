"""A slow handler with a database effect, loaded only by worker processes that the kill -9 test
starts (EVENT_HANDLER_MODULES=hashinsight.events.tests.support)."""

import os
import time
from pathlib import Path

from hashinsight.events.models import JobRun
from hashinsight.events.registry import handles


@handles("portfolio.changed")
def slow_effect(payload, event) -> None:
    marks = Path(os.environ["KILLTEST_DIR"])
    with (marks / "started").open("a") as fh:
        fh.write(f"{event.pk} {os.getpid()}\n")
    time.sleep(float(os.environ.get("KILLTEST_SLEEP_S", "3")))
    # The effect: committed with the handler's receipt, or not at all.
    JobRun.objects.create(job_type="killtest-effect", result={"event": str(event.pk)})
