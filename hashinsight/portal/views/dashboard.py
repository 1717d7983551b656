"""The dashboard: fleet money and status for operators and clients, portfolio money for customers.

Everything on it comes from the cached summaries (``miners.summaries``); a warm dashboard costs a
few queries (session, user, the site list) whatever the fleet size."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from hashinsight.accounts.roles import Access, Module, Role, has_access, role_of
from hashinsight.core import cache as cache_helper
from intelligence import market
from intelligence.market import latest_snapshot
from miners import selectors as miner_selectors
from miners.models import Miner
from miners.summaries import fleet_money


def market_context(market_date: str) -> dict:
    """The market figures' date and whether they are stale, for ``portal/_market_note.html``."""
    today = timezone.now().date()
    return {
        "market": latest_snapshot(),
        "market_date": market_date,
        "market_age_days": market.age_days(market_date, today=today),
        "market_stale": market.is_stale(market_date, today=today),
        "stale_after_days": market.STALE_AFTER_DAYS,
    }


def status_chart(money) -> dict:
    return {
        "labels": [row.site.name for row in money.sites],
        "datasets": [
            {"label": str(Miner.Status(s).label), "data": [row.by_status.get(s, 0) for row in money.sites]}
            for s in Miner.Status.values
        ],
    }


def _portfolio(user) -> dict | None:
    entries = list(miner_selectors.portfolio_list(user=user))
    if not entries and role_of(user) != Role.CUSTOMER:
        return None
    cached = cache_helper.get("user_portfolio", id=user.pk)
    by_entry = {row["id"]: row for row in cached.value.get("by_entry", [])}
    return {
        "summary": cached.value,
        "rows": [(entry, by_entry.get(entry.pk)) for entry in entries],
        "cache_state": cached.state,
    }


@login_required
def dashboard(request):
    money = fleet_money(user=request.user) if has_access(request.user, Module.HOSTING) else None
    portfolio = _portfolio(request.user) if has_access(request.user, Module.BASIC, Access.FULL) else None
    context = {"money": money, "portfolio": portfolio, "chart": status_chart(money) if money and money.sites else None}
    states = ([portfolio["cache_state"]] if portfolio else []) + ([money.cache_state] if money else [])
    if money or portfolio:
        context.update(market_context(money.market_date if money else portfolio["summary"]["market_date"]))
    response = render(request, "portal/dashboard.html", context)
    if states:
        response["X-Cache"] = ",".join(states)
    return response
