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
