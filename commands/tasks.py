"""Periodic command jobs (declared in hashinsight/events/schedules.py)."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job


@job("commands_expire", priority=1)
def _expire(ctx):
    from commands.services import commands_expire

    expired = commands_expire()
    ctx.count(processed=expired, succeeded=expired)
    return {"expired": expired}


@shared_task(name="commands.expire", bind=True, acks_late=True, ignore_result=True)
def expire(self, trigger: str = "schedule") -> dict:
    """Time out commands past their expiry (pending approval, approved but not sent, sent but not acknowledged)."""
    return _expire(trigger=trigger, task_id=self.request.id or "")


@job("commands_verify")
def _verify(ctx):
    from commands.verification import commands_verify

    result = commands_verify()
    ctx.count(processed=result["targets"], succeeded=result["verified"], failed=result["not_seen"])
    return result


@shared_task(name="commands.verify", bind=True, acks_late=True, ignore_result=True)
def verify(self, trigger: str = "schedule") -> dict:
    """Verify acknowledged commands' effects from telemetry (commands.verification). Runs every few seconds: when
    nothing waits it costs one indexed query and leaves no job record (a record every 5 s would say nothing)."""
    from commands.verification import verification_due

    if not verification_due():
        return {"commands": 0}
    return _verify(trigger=trigger, task_id=self.request.id or "")
