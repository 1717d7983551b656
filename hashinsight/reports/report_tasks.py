"""Report rendering and schedules: Celery tasks (owner: reports). Thin: each re-reads by id and calls a service.

- ``reports.render`` (job id): renders the job's files step by step; idempotent (a job already done is left alone, a
  re-run of an unfinished one replaces its files); failures are recorded on the job, so the task itself never fails
  on a report's data. Bounded by a time limit.
- ``reports.run_schedules`` (daily): queues last month's report of each due schedule once per month, and sweeps
  jobs stuck in the queue or abandoned by a dead worker."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job


@shared_task(name="reports.render", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def render(job_id: int) -> dict:
    from hashinsight.reports.services import report_render

    done = report_render(job_id=int(job_id))
    return {"job_id": job_id, "status": getattr(done, "status", None)}


@job("reports.run_schedules")
def _run_schedules(ctx) -> dict:
    from hashinsight.reports.services import schedules_run

    result = schedules_run()
    ctx.count(processed=result["queued"] + result["waiting"], succeeded=result["queued"])
    return result


@shared_task(
    name="reports.run_schedules", bind=True, acks_late=True, ignore_result=True, soft_time_limit=300, time_limit=360
)
def run_schedules(self, trigger: str = "schedule") -> dict:
    """Queue the month's scheduled reports (they e-mail their recipients when rendered)."""
    return _run_schedules(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)
