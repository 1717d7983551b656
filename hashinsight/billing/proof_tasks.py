"""Daily proof roots: Celery tasks (owner: proofs). Thin: they call ``hashinsight.billing.proofs``."""

from __future__ import annotations

from celery import shared_task

from hashinsight.events.jobs import job


@job("billing.close_proof_days")
def _close_proof_days(ctx) -> dict:
    from hashinsight.billing import proofs

    roots = proofs.close_pending_days()
    ctx.count(processed=len(roots), succeeded=len(roots))
    broadcast = proofs.broadcast_pending()  # nothing unless BILLING_BROADCAST_OP_RETURN and an adapter are set
    return {
        "closed": [{"day": r.day.isoformat(), "root": r.root_sha256, "leaves": r.leaf_count} for r in roots],
        "broadcast": [{"day": r.day.isoformat(), "txid": r.broadcast_txid} for r in broadcast],
    }


@shared_task(name="billing.close_proof_days", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=3,
             soft_time_limit=600, time_limit=660)  # fmt: skip
def close_proof_days(self, trigger: str = "schedule") -> dict:
    """Beat (hourly): close every past UTC day with issued documents not in a tree yet, oldest first (catches up
    after downtime; a closed day is never rebuilt, so a rerun or a redelivery changes nothing)."""
    return _close_proof_days(trigger=trigger, task_id=self.request.id or "", retries=self.request.retries or 0)
