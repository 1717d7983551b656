"""The responder's settings and decisions API: managers write, readers read, a hidden site is a 404, bad values
are a 400 naming the field and change nothing; decisions list, sort, filter and export as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from intelligence.models import RealtimeResponder, ResponderDecision

pytestmark = pytest.mark.django_db


def url(site, tail: str = "") -> str:
    return f"/api/v1/sites/{site.pk}/responder{tail}"


def test_defaults_then_a_manager_changes_them(api, farm):
    api.force_authenticate(farm.users["siteowner_a"])
    body = api.get(url(farm.site_a)).json()
    assert body["enabled"] is False and body["min_on_minutes"] == 15 and body["command_mode"] == "hard"
    r = api.put(url(farm.site_a), {"enabled": True, "hysteresis_usd_per_mwh": 2.5, "min_off_minutes": 30,
                                   "ramp_kw_per_hour": "100", "command_mode": "soft"}, format="json")  # fmt: skip
    assert r.status_code == 200, r.content
    saved = RealtimeResponder.objects.get(site=farm.site_a)
    assert saved.enabled and saved.hysteresis_usd_per_mwh == Decimal("2.50") and saved.min_off_minutes == 30
    assert saved.ramp_kw_per_hour == Decimal("100") and saved.command_mode == "soft"
    assert saved.updated_by == farm.users["siteowner_a"]
    assert api.put(url(farm.site_a), {"ramp_kw_per_hour": None}, format="json").json()["ramp_kw_per_hour"] is None


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"enabled": "yes"}, "invalid", "enabled"),
        ({"hysteresis_usd_per_mwh": -1}, "out_of_range", "hysteresis_usd_per_mwh"),
        ({"hysteresis_usd_per_mwh": "NaN"}, "not_a_number", "hysteresis_usd_per_mwh"),
        ({"min_on_minutes": 1441}, "out_of_range", "min_on_minutes"),
        ({"min_off_minutes": 2.5}, "out_of_range", "min_off_minutes"),
        ({"ramp_kw_per_hour": "fast"}, "not_a_number", "ramp_kw_per_hour"),
        ({"command_mode": "gentle"}, "invalid_choice", "command_mode"),
        ({"enabled": True, "colour": "red"}, "unknown_field", "colour"),
    ],
)
def test_bad_values_are_a_400_naming_the_field_and_change_nothing(api, farm, data, code, field):
    api.force_authenticate(farm.users["owner"])
    r = api.put(url(farm.site_a), data, format="json")
    assert r.status_code == 400 and r.json()["error_code"] == code and r.json()["details"]["field"] == field
    assert not RealtimeResponder.objects.filter(enabled=True).exists()


@pytest.mark.parametrize(
    ("user", "site", "read", "write"),
    [
        ("owner", "site_a", 200, 200),
        ("admin", "site_b", 200, 200),
        ("siteowner_a", "site_a", 200, 200),
        ("siteowner_a", "site_b", 404, 404),  # not granted: hidden
        ("siteowner_b_ro", "site_b", 200, 403),  # read-only grant
        ("client_x", "site_a", 403, 403),  # no CURTAILMENT access at all: the module's refusal, as for plans
        ("customer", "site_a", 403, 403),
        ("guest", "site_a", 403, 403),
    ],
)
def test_permissions(api, farm, user, site, read, write):
    api.force_authenticate(farm.users[user])
    target = getattr(farm, site)
    got = api.get(url(target)).status_code
    put = api.put(url(target), {"enabled": True}, format="json").status_code
    listed = api.get(url(target, "/decisions")).status_code
    assert (got, put, listed) == (read, write, read)
    assert RealtimeResponder.objects.filter(enabled=True).exists() == (write == 200)


def test_unknown_site_is_404_and_anonymous_is_refused(api, farm):
    assert api.get(url(farm.site_a)).status_code in (401, 403)
    api.force_authenticate(farm.users["owner"])
    assert api.get("/api/v1/sites/999999/responder").status_code == 404


def decisions(farm):
    t = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    rows = []
    for k, (last, used, acted) in enumerate([(30, 31, False), (250, 240, True), (90, 95, False)]):
        actions = [{"group": "g", "from_on": 4, "to_on": 0, "done": -4}] if acted else []
        rows.append(ResponderDecision.objects.create(
            site=farm.site_a, interval_start=t + timedelta(minutes=15 * k), price_usd_per_mwh=Decimal(last),
            decided_price_usd_per_mwh=Decimal(used), decision={"actions": actions, "held": [], "groups": []},
        ))  # fmt: skip
    ResponderDecision.objects.create(
        site=farm.site_b, interval_start=t, price_usd_per_mwh=Decimal(1), decided_price_usd_per_mwh=Decimal(1)
    )
    return rows


def test_decisions_list_sort_filter_and_csv(api, farm):
    rows = decisions(farm)
    api.force_authenticate(farm.users["siteowner_a"])
    body = api.get(url(farm.site_a, "/decisions")).json()
    assert body["count"] == 3 and [d["id"] for d in body["results"]] == [rows[2].pk, rows[1].pk, rows[0].pk]
    by_price = api.get(url(farm.site_a, "/decisions"), {"sort": "price"}).json()["results"]
    assert [d["price_usd_per_mwh"] for d in by_price] == ["30.00", "90.00", "250.00"]
    acted = api.get(url(farm.site_a, "/decisions"), {"acted": "true"}).json()["results"]
    assert [d["id"] for d in acted] == [rows[1].pk]
    since = api.get(url(farm.site_a, "/decisions"), {"since": "2026-01-05T12:15:00Z"}).json()
    assert since["count"] == 2
    assert api.get(url(farm.site_a, "/decisions"), {"sort": "colour"}).status_code == 400
    csv = api.get(url(farm.site_a, "/decisions"), {"format": "csv"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert "Price used (USD/MWh)" in text and "g 4→0" in text and text.count("\n") == 4
