from celery import shared_task
from django.core.cache import cache

from hashinsight.core import cache as cache_helper
from hashinsight.core import registry
from hashinsight.events.jobs import job


@shared_task(name="core.rebuild_cache", acks_late=True, ignore_result=True)
def rebuild_cache(name: str, parts: dict) -> None:
    key = cache_helper.cache_key(name, **parts)
    try:
        cache_helper.build_and_store(name, **parts)
    finally:
        cache.delete(f"lock:{key}")


@job("cache_warming", priority=1)
def _warm(ctx, limit: int = 200):
    """Rebuild what the registered warmers name (most active first, ``limit`` per kind of entry);
    one failing entry is counted and skipped, not fatal."""
    warmed: dict[str, int] = {}
    for warmer_name, warmer in registry.warmers().items():
        targets = list(warmer(limit))
        for builder_name, parts in targets:
            try:
                cache_helper.build_and_store(builder_name, **parts)
                ctx.count(processed=1, succeeded=1)
            except Exception:
                ctx.count(processed=1, failed=1)
        warmed[warmer_name] = len(targets)
    return warmed


@shared_task(name="core.warm_caches", bind=True, acks_late=True, ignore_result=True)
def warm_caches(self, trigger: str = "schedule") -> dict:
    return _warm(trigger=trigger, task_id=self.request.id or "")
