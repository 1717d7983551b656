"""What follows a change to a user's fleet or to the served forecast models: the user's ``forecast:{id}`` is
invalidated (readers get the stale entry while it rebuilds) and one coalesced ``intelligence.forecast_refresh``
runs per user, however many events arrived (the seed's chain: a user adds a miner → outbox event → worker
recalculates → cache refreshed → ``GET /api/forecast/<user_id>``).

Sites' and hosting clients' revenue forecasts (``revenue_forecast:{subject}``) follow their miners the same way:
a miner created, moved, changed or deleted refreshes the site(s) and client(s) it stood at; a client's hosting
rate or a site's tariff refreshes that subject. Power prices reach a site's forecast through the hourly refresh
(an upload is many rows, and the forecast uses their 30-day average)."""

import logging

from hashinsight.core import cache as cache_helper
from hashinsight.events.coalesce import request_work_many
from hashinsight.events.registry import handles

log = logging.getLogger(__name__)


def refresh_users(user_ids, *, events=()) -> None:
    ids = sorted(set(user_ids))
    cache_helper.invalidate_many("forecast", [{"id": u} for u in ids])
    new = request_work_many([(f"forecast:user:{u}", "intelligence.forecast_refresh", [u]) for u in ids])
    log.info(
        "forecast refresh requested",
        extra={
            "user_ids": ids[:20],
            "users": len(ids),
            "scheduled": len(new),
            "event_ids": [str(e) for e in events][:20],
        },
    )


@handles("portfolio.changed", batch=True)
def refresh_changed_portfolios(pairs) -> None:
    refresh_users((payload.user_id for payload, _event in pairs), events=[event.pk for _payload, event in pairs])


@handles("miner_model.changed", batch=True)
def refresh_model_users(pairs) -> None:
    """A catalog model's TH/s or W changed: every portfolio holding it earns differently."""
    from miners.models import PortfolioEntry

    model_ids = sorted({payload.model_id for payload, _event in pairs})
    refresh_users(PortfolioEntry.objects.filter(model_id__in=model_ids).values_list("user_id", flat=True).distinct())


@handles("forecast.refreshed", batch=True)
def network_model_changed(pairs) -> None:
    """A network model was activated or rolled back: every user's cached forecast is stale (served stale and
    rebuilt on the next read; the hourly refresh rebuilds portfolios). Any active user may hold an entry (the
    page and the API build one for whoever reads), so all are invalidated: one pipelined round-trip, and
    activations are rare. A user's own refresh (subject ``user:N``) needs nothing."""
    from django.contrib.auth import get_user_model

    if any(payload.subject == "network" for payload, _event in pairs):
        from intelligence.forecasting import revenue_subjects

        users = get_user_model().objects.filter(is_active=True).values_list("pk", flat=True)
        cache_helper.invalidate_many("forecast", [{"id": u} for u in users.order_by("pk")])
        cache_helper.invalidate_many("revenue_forecast", [{"subject": s} for s in revenue_subjects()])


def refresh_subjects(subjects, *, events=()) -> None:
    subjects = sorted(set(subjects))
    if not subjects:
        return
    cache_helper.invalidate_many("revenue_forecast", [{"subject": s} for s in subjects])
    new = request_work_many([(f"forecast:{s}", "intelligence.revenue_refresh", [s]) for s in subjects])
    log.info(
        "revenue forecast refresh requested",
        extra={"subjects": subjects[:20], "count": len(subjects), "scheduled": len(new),
               "event_ids": [str(e) for e in events][:20]},
    )  # fmt: skip


def _miner_subjects(payload) -> list[str]:
    if hasattr(payload, "site_ids"):  # miners.bulk_imported
        sites, customers = list(payload.site_ids), list(getattr(payload, "customer_ids", []))
    else:  # miner.created / updated / deleted: where it stands now and where it stood
        sites = [payload.site_id, getattr(payload, "old_site_id", None)]
        customers = [payload.customer_id, getattr(payload, "old_customer_id", None)]
    return [f"site:{s}" for s in sites if s is not None] + [f"customer:{c}" for c in customers if c is not None]


@handles("miner.created", "miner.updated", "miner.deleted", "miners.bulk_imported", batch=True)
def refresh_miner_subjects(pairs) -> None:
    refresh_subjects((s for payload, _event in pairs for s in _miner_subjects(payload)),
                     events=[event.pk for _payload, event in pairs])  # fmt: skip


@handles("site.changed", batch=True)
def refresh_changed_sites(pairs) -> None:
    """Its tariff (``power_price_usd_per_kwh``) prices a site without power prices."""
    refresh_subjects(f"site:{payload.site_id}" for payload, _event in pairs if payload.action != "deleted")


@handles("customer.changed", batch=True)
def refresh_changed_customers(pairs) -> None:
    """Its hosting rate is the client's power cost."""
    refresh_subjects(f"customer:{payload.object_id}" for payload, _event in pairs if payload.action != "deleted")
