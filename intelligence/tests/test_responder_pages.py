"""The responder pages: the sites list and one site's page (settings, enable/disable, decisions with sort,
filter and CSV); a manager changes settings, a read-only grant only reads, a hidden site is a 404."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from intelligence.models import RealtimeResponder, ResponderDecision

pytestmark = pytest.mark.django_db


def decision(site, minute=0, acted=True):
    actions = [{"group": "m1-z1-own", "from_on": 4, "to_on": 0, "done": -4, "reason": "", "forced": False}]
    return ResponderDecision.objects.create(
        site=site, interval_start=datetime(2026, 1, 5, 12, minute, tzinfo=UTC), price_usd_per_mwh=Decimal("250"),
        decided_price_usd_per_mwh=Decimal("240.5"),
        decision={"actions": actions if acted else [], "held": ["min_off_hours: g keeps 1 off"],
                  "groups": [{"group": "m1-z1-own", "label": "Antminer S19 · A1", "count": 4, "on_before": 4,
                              "on_after": 0, "breakeven_usd_per_mwh": 61.2, "kw_each": 3.25}]},
    )  # fmt: skip


def test_manager_sees_saves_and_toggles(client, farm):
    decision(farm.site_a)
    client.force_login(farm.users["siteowner_a"])
    assert client.get("/curtailment/responder/").status_code == 200
    page = client.get(f"/curtailment/responder/{farm.site_a.pk}/")
    text = page.content.decode()
    assert page.status_code == 200 and 'data-testid="responder-enable"' in text
    assert "61.20 USD/MWh" in text and "4→0 of 4 on" in text and "min_off_hours" in text
    r = client.post(f"/curtailment/responder/{farm.site_a.pk}/", {
        "hysteresis_usd_per_mwh": "3", "min_on_minutes": "30", "min_off_minutes": "15", "ramp_kw_per_hour": "",
        "command_mode": "soft"})  # fmt: skip
    assert r.status_code == 302
    saved = RealtimeResponder.objects.get(site=farm.site_a)
    assert saved.min_on_minutes == 30 and saved.command_mode == "soft" and saved.ramp_kw_per_hour is None
    client.post(f"/curtailment/responder/{farm.site_a.pk}/enable/")
    saved.refresh_from_db()
    assert saved.enabled and saved.updated_by == farm.users["siteowner_a"]
    assert 'data-testid="responder-disable"' in client.get(f"/curtailment/responder/{farm.site_a.pk}/").content.decode()
    client.post(f"/curtailment/responder/{farm.site_a.pk}/disable/")
    saved.refresh_from_db()
    assert not saved.enabled


def test_bad_settings_are_shown_and_change_nothing(client, farm):
    client.force_login(farm.users["owner"])
    r = client.post(
        f"/curtailment/responder/{farm.site_a.pk}/",
        {"hysteresis_usd_per_mwh": "-1", "min_on_minutes": "5000", "min_off_minutes": "15", "command_mode": "hard"},
    )
    assert r.status_code == 200 and "text-danger" in r.content.decode() and not RealtimeResponder.objects.exists()


def test_read_only_and_hidden(client, farm):
    decision(farm.site_b)
    client.force_login(farm.users["siteowner_b_ro"])
    page = client.get(f"/curtailment/responder/{farm.site_b.pk}/")
    assert page.status_code == 200 and 'data-testid="responder-enable"' not in page.content.decode()
    assert client.post(f"/curtailment/responder/{farm.site_b.pk}/enable/").status_code == 302
    assert not RealtimeResponder.objects.filter(enabled=True).exists()
    assert client.get(f"/curtailment/responder/{farm.site_a.pk}/").status_code == 404
    client.force_login(farm.users["client_x"])
    assert client.get(f"/curtailment/responder/{farm.site_a.pk}/").status_code == 403


def test_decisions_filter_sort_and_csv(client, farm):
    decision(farm.site_a, 0, acted=True)
    decision(farm.site_a, 15, acted=False)
    client.force_login(farm.users["owner"])
    base = f"/curtailment/responder/{farm.site_a.pk}/"
    assert client.get(base).content.decode().count('data-testid="decision-row"') == 2
    assert client.get(base, {"acted": "yes"}).content.decode().count('data-testid="decision-row"') == 1
    assert client.get(base, {"sort": "price"}).status_code == 200
    csv = client.get(base, {"format": "csv"})
    body = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert csv["Content-Type"].startswith("text/csv") and "Price used (USD/MWh)" in body and body.count("\n") == 3
