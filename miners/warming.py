"""What the periodic cache-warming job keeps warm for this app, most active first: portfolios of
active users by last login, then site summaries and hosting-client summaries by fleet size (the
core job walks this list)."""

from __future__ import annotations

from django.db.models import Count, F

from hashinsight.accounts.models import User
from hashinsight.core.registry import register_warmer
from sites.models import Customer, Site


@register_warmer("miners")
def warm_targets(limit: int) -> list[tuple[str, dict]]:
    """Up to ``limit`` portfolios, ``limit`` site summaries and ``limit`` hosting-client summaries."""
    users = (
        User.objects.filter(is_active=True, portfolio__isnull=False)
        .distinct()
        .order_by(F("last_login").desc(nulls_last=True))  # never-logged-in last
        .values_list("pk", flat=True)[:limit]
    )
    sites = Site.objects.annotate(n=Count("miners")).order_by("-n").values_list("pk", flat=True)[:limit]
    customers = (
        Customer.objects.annotate(n=Count("miners")).filter(n__gt=0).order_by("-n").values_list("pk", flat=True)[:limit]
    )
    return (
        [("user_portfolio", {"id": pk}) for pk in users]
        + [("site_summary", {"id": pk}) for pk in sites]
        + [("customer_summary", {"id": pk}) for pk in customers]
    )
