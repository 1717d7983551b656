"""The "Miner health" page: a client sees only its own miners, filters and sort from the query string, CSV in the
page's language, the recompute button queues a run for oneself, reasons worded in Chinese; AI READ needed."""

from __future__ import annotations

import pytest
from django.utils import timezone

from intelligence.models import MinerHealth

pytestmark = pytest.mark.django_db


def score(miner, value, tier, reasons=()):
    return MinerHealth.objects.create(miner=miner, score=value, tier=tier, reasons=list(reasons), features={},
                                      computed_at=timezone.now())  # fmt: skip


HOT = {"code": "temp_margin", "logit": 3.9, "text": "chip temperature 93 °C, 2 °C below its 95 °C limit",
       "params": {"temp_c": "93", "margin_c": "2", "limit_c": "95"}}  # fmt: skip


@pytest.fixture
def scored(farm):
    score(farm.miners[("site-a", "client-x")], 0.62, "at_risk", [HOT])
    score(farm.miners[("site-a", "client-y")], 0.05, "ok")
    score(farm.miners[("site-b", "client-x")], 0.3, "watch")
    return farm


def test_a_client_sees_only_its_miners_riskiest_first(client, scored):
    client.force_login(scored.users["client_x"])
    r = client.get("/miner-health/")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count('data-testid="health-row"') == 2
    assert html.index(scored.miners[("site-a", "client-x")].serial) < html.index(
        scored.miners[("site-b", "client-x")].serial
    )
    assert scored.miners[("site-a", "client-y")].serial not in html
    assert "62 %" in html and "chip temperature 93 °C, 2 °C below its 95 °C limit" in html


def test_filters_sort_and_csv(client, scored):
    client.force_login(scored.users["owner"])
    html = client.get("/miner-health/?tier=watch").content.decode()
    assert html.count('data-testid="health-row"') == 1
    html = client.get(f"/miner-health/?site={scored.site_a.pk}&sort=score").content.decode()
    assert html.count('data-testid="health-row"') == 2
    assert html.index(scored.miners[("site-a", "client-y")].serial) < html.index(
        scored.miners[("site-a", "client-x")].serial
    )
    r = client.get("/miner-health/?format=csv&tier=at_risk")
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    assert r["Content-Type"].startswith("text/csv") and len(text.strip().splitlines()) == 2
    assert "Failure risk (0–1)" in text and "0.62" in text


def test_reasons_are_worded_in_chinese(client, scored):
    client.force_login(scored.users["owner"])
    client.cookies["django_language"] = "zh-hans"
    r = client.get("/miner-health/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 200 and 'lang="zh-hans"' in r.content.decode().lower()


def test_recompute_queues_a_run_for_oneself(client, scored, django_capture_on_commit_callbacks):
    from hashinsight.events.models import JobRun

    client.force_login(scored.users["client_x"])
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/miner-health/recompute")
    assert r.status_code == 302 and r["Location"].endswith("/miner-health/")
    assert JobRun.objects.filter(job_type="intelligence.health_predict", status="success").count() == 1
    assert client.get("/miner-health/recompute").status_code == 405


def test_roles_without_ai_are_refused(client, scored):
    client.force_login(scored.users["guest"])
    assert client.get("/miner-health/").status_code == 403
