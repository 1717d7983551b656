"""Miner health end to end: features in one query, scores upserted (idempotent), a client seeing only its own
miners in the list, detail, CSV and summary, the queued run (202 with the task id, others' runs for owners and
admins only) and the hourly job."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hashinsight.events.models import JobRun
from intelligence import miner_health
from intelligence.models import MinerHealth
from sites.selectors import Scope
from telemetry.models import Daily, History5m

pytestmark = pytest.mark.django_db


def history(miner, *, temp=70.0, hashrate=None, restarts=0, fan_now=6000.0, fan_yesterday=6000.0):
    nominal = float(miner.model.hashrate_ths)
    today = timezone.now().date()
    Daily.objects.bulk_create([
        Daily(miner=miner, day=today - timedelta(days=d), site_id=miner.site_id, customer_id=miner.customer_id,
              sample_count=288, buckets_reported=288, avg_hashrate_ths=hashrate or nominal, energy_kwh=80.0,
              uptime_pct=100.0, max_temp_chip_c=temp, restarts=restarts if d == 1 else 0, accepted_shares=1000,
              rejected_shares=1)
        for d in range(1, 15)
    ])  # fmt: skip
    now = timezone.now()
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    rows = []
    for base, fan in ((end, fan_now), (end - timedelta(days=1), fan_yesterday)):
        for k in range(1, 24):
            rows.append(History5m(
                miner=miner, bucket=base - k * timedelta(minutes=5), site_id=miner.site_id,
                customer_id=miner.customer_id, sample_count=5, hashing_count=5, uptime_fraction=1.0,
                min_fan_rpm=fan, max_temp_chip_max_c=temp,
            ))  # fmt: skip
    History5m.objects.bulk_create(rows)


@pytest.fixture
def fleet(farm):
    hot = farm.miners[("site-a", "client-x")]
    history(hot, temp=94.0, restarts=8, fan_now=3000.0)
    history(farm.miners[("site-a", "client-y")])
    history(farm.miners[("site-b", "client-x")], temp=89.0)
    history(farm.miners[("site-a", "own")])
    return farm


def test_scores_come_from_one_query_and_are_upserted(fleet):
    with CaptureQueriesContext(connection) as queries:
        rows = miner_health.feature_rows(Scope("all"))
    assert len(queries.captured_queries) == 1 and len(rows) == 6
    run = miner_health.health_compute(Scope("all"))
    assert run.miners == 6 and run.scored == 4 and run.unscored == 2  # two miners have no history at all
    hot = MinerHealth.objects.get(miner=fleet.miners[("site-a", "client-x")])
    assert hot.tier == "at_risk" and hot.score > 0.9
    assert [r["code"] for r in hot.reasons] == ["temp_margin", "fan_drop", "restarts"]
    assert hot.reasons[0]["text"] == "chip temperature 94 °C, 1 °C below its 95 °C limit"
    assert hot.features["days"] == 14 and hot.features["fan_drop_pct"] == 50.0
    assert MinerHealth.objects.get(miner=fleet.miners[("site-b", "client-x")]).tier == "watch"
    assert MinerHealth.objects.get(miner=fleet.miners[("site-a", "own")]).tier == "ok"


def test_a_rerun_changes_nothing(fleet):
    miner_health.health_compute(Scope("all"))
    first = sorted(MinerHealth.objects.values_list("miner_id", "score", "tier", "reasons"))
    miner_health.health_compute(Scope("all"))
    assert sorted(MinerHealth.objects.values_list("miner_id", "score", "tier", "reasons")) == first
    assert MinerHealth.objects.count() == 4


def test_a_scope_scores_only_its_miners(fleet):
    run = miner_health.health_compute(Scope("customers", (fleet.client_x.pk,)))
    assert run.miners == 2 and run.scored == 2
    assert set(MinerHealth.objects.values_list("miner__customer_id", flat=True)) == {fleet.client_x.pk}


def get(api, user, url):
    api.force_authenticate(user)
    return api.get(url)


def test_the_list_shows_a_client_only_its_miners_with_filters_sort_and_csv(api, fleet):
    miner_health.health_compute(Scope("all"))
    body = get(api, fleet.users["client_x"], "/api/v1/miner-health").json()
    assert body["count"] == 2
    assert [r["tier"] for r in body["results"]] == ["at_risk", "watch"]  # riskiest first
    assert get(api, fleet.users["owner"], "/api/v1/miner-health").json()["count"] == 4
    assert get(api, fleet.users["owner"], "/api/v1/miner-health?tier=ok").json()["count"] == 2
    site_b = get(api, fleet.users["owner"], f"/api/v1/miner-health?site={fleet.site_b.pk}").json()
    assert site_b["count"] == 1
    rising = get(api, fleet.users["owner"], "/api/v1/miner-health?ordering=score").json()["results"]
    assert rising[0]["score"] <= rising[-1]["score"]
    assert get(api, fleet.users["owner"], "/api/v1/miner-health?tier=dead").json()["error_code"] == "invalid_filter"
    r = get(api, fleet.users["client_x"], "/api/v1/miner-health?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert rows[0][4] == "Failure risk (0–1)" and len(rows) == 3
    assert "chip temperature 94 °C" in rows[1][6]


def test_detail_and_hidden_miners(api, fleet):
    miner_health.health_compute(Scope("all"))
    mine, theirs = fleet.miners[("site-a", "client-x")], fleet.miners[("site-a", "client-y")]
    r = get(api, fleet.users["client_x"], f"/api/v1/miner-health/{mine.pk}")
    assert r.status_code == 200 and r.json()["tier"] == "at_risk" and r.json()["serial"] == mine.serial
    assert get(api, fleet.users["client_x"], f"/api/v1/miner-health/{theirs.pk}").status_code == 404
    assert get(api, fleet.users["siteowner_a"], f"/api/v1/miner-health/{fleet.miners[('site-b', 'client-x')].pk}"
               ).status_code == 404  # fmt: skip
    assert get(api, fleet.users["owner"], "/api/v1/miner-health/999999").status_code == 404
    assert get(api, fleet.users["guest"], "/api/v1/miner-health").status_code == 403


def test_summary_counts_what_the_user_sees(api, fleet):
    miner_health.health_compute(Scope("all"))
    body = get(api, fleet.users["client_x"], "/api/v1/miner-health/summary").json()
    assert body["tiers"] == {"ok": 0, "watch": 1, "at_risk": 1} and body["miners"] == 2
    assert body["worst"][0]["serial"] == fleet.miners[("site-a", "client-x")].serial


def test_a_user_queues_a_run_for_themself(api, fleet, django_capture_on_commit_callbacks):
    api.force_authenticate(fleet.users["client_x"])
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/v1/health-predict", {}, format="json")
    assert r.status_code == 202, r.json()
    run = JobRun.objects.get(task_id=r.json()["task_id"])
    assert run.job_type == "intelligence.health_predict" and run.status == "success"
    assert run.result["scored"] == 2 and run.result["summary_tiers"]["at_risk"] == 1
    assert MinerHealth.objects.count() == 2  # only client X's miners were scored


def test_only_owners_and_admins_queue_for_someone_else(api, fleet, django_capture_on_commit_callbacks):
    api.force_authenticate(fleet.users["client_x"])
    other = fleet.users["client_y"].pk
    assert api.post("/api/v1/health-predict", {"user_id": other}, format="json").status_code == 404
    api.force_authenticate(fleet.users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/v1/health-predict", {"user_id": other}, format="json")
    assert r.status_code == 202 and r.json()["user_id"] == other
    assert api.post("/api/v1/health-predict", {"user_id": 999999}, format="json").status_code == 404
    assert api.post("/api/v1/health-predict", {"user_id": "x"}, format="json").status_code == 400
    api.force_authenticate(fleet.users["guest"])
    assert api.post("/api/v1/health-predict", {}, format="json").status_code == 403


def test_the_hourly_job_scores_everyone_once_and_warms_the_asset_forecasts(fleet):
    from intelligence.health_tasks import health_predict_all

    result = health_predict_all.apply().get()
    assert result["scored"] == 4 and result["asset_forecasts"]["warmed"] == 4
    assert JobRun.objects.filter(job_type="intelligence.health_predict_all", status="success").count() == 1
    health_predict_all.apply().get()  # a redelivery: same rows
    assert MinerHealth.objects.count() == 4
