from celery import shared_task
from django.core.cache import cache

from hashinsight.core import cache as cache_helper
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
    """Most active first: users by last login (with a portfolio), sites by fleet size."""
    from django.db.models import Count

    from hashinsight.accounts.models import User
    from sites.models import Site

    users = (
        User.objects.filter(is_active=True, portfolio__isnull=False)
        .distinct()
        .order_by("-last_login")
        .values_list("pk", flat=True)[:limit]
    )
    sites = Site.objects.annotate(n=Count("miners")).order_by("-n").values_list("pk", flat=True)[:limit]
    for name, ids in (("user_portfolio", users), ("site_summary", sites)):
        for pk in ids:
            try:
                cache_helper.build_and_store(name, id=pk)
                ctx.count(processed=1, succeeded=1)
            except Exception:
                ctx.count(processed=1, failed=1)
    return {"users": len(users), "sites": len(sites)}


@shared_task(name="core.warm_caches", bind=True, acks_late=True, ignore_result=True)
def warm_caches(self, trigger: str = "schedule") -> dict:
    return _warm(trigger=trigger, task_id=self.request.id or "")
