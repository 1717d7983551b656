"""The telemetry query API: scope on every endpoint (JSON and CSV), keyset pages, the layer a history
range reads, and bad input answered 400 in the standard error shape."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from hashinsight.tests.factories import MinerFactory, MinerModelFactory, ZoneFactory
from telemetry import telemetry_selectors as sel
from telemetry.models import Alert, Daily, History5m, LiveStatus, RawSample, SiteDaily, SiteHistory5m

pytestmark = pytest.mark.django_db


def live(miner, *, now=None, age_s=30, status="hashing", ths=190.0, temp=70.0, power=3400.0, **extra):
    now = now or timezone.now()
    return LiveStatus(
        miner=miner, site_id=miner.site_id,
                   customer_id=miner.customer_id, last_seen=now - timedelta(seconds=age_s),
        hashrate_ghs=None if ths is None else ths * 1000, hashrate_ths_instant=ths, temp_chip_max_c=temp,
        temp_inlet_c=25.0, temp_outlet_c=45.0, fan_rpm=[6000, 6200], power_w=power, status=status, updated_at=now,
        **extra,
    )  # fmt: skip


def login(api, farm, name):
    api.force_authenticate(farm.users[name])
    return api


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def fleet(farm):
    """Live rows for all six farm miners, with distinct figures per client."""
    m = farm.miners
    LiveStatus.objects.bulk_create(
        [
            live(m[("site-a", "client-x")], ths=100.0, temp=81.0, power=3000.0),
            live(m[("site-a", "client-y")], ths=150.0, temp=62.0, power=3100.0),
            live(m[("site-a", "own")], ths=None, temp=None, power=None, age_s=3600),  # silent for an hour
            live(m[("site-b", "client-x")], ths=90.0, temp=55.0),
            live(m[("site-b", "client-y")], ths=80.0, temp=99.0, status="error"),
            live(m[("site-b", "own")], ths=0.0, temp=40.0, status="idle"),
        ]
    )
    return farm


def url(kind, site_id):
    return f"/api/v1/telemetry/sites/{site_id}/{kind}"


# --- scope -------------------------------------------------------------------------------------------


def test_client_sees_only_its_own_miners_live_and_csv(api, fleet):
    login(api, fleet, "client_x")
    body = api.get(url("live", fleet.site_a.pk)).json()
    assert [r["serial"] for r in body["results"]] == [fleet.miners[("site-a", "client-x")].serial]
    assert body["results"][0]["hashrate_ths"] == 100.0
    assert body["results"][0]["hashrate_pct_of_nominal"] == 50.0  # factory model: 200 TH/s nominal
    response = api.get(url("live", fleet.site_a.pk), {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows[0][0] == "Serial" and "Hashrate, 5-min average (TH/s)" in rows[0]
    assert [r[0] for r in rows[1:]] == [fleet.miners[("site-a", "client-x")].serial]
    # Filtering by the other client's id finds nothing rather than their miners.
    body = api.get(url("live", fleet.site_a.pk), {"customer": fleet.client_y.pk}).json()
    assert body["results"] == []


def test_client_summary_counts_its_own_miners_only(api, fleet):
    login(api, fleet, "client_y")
    body = api.get(url("summary", fleet.site_b.pk)).json()
    assert body["scope"] == "customers"
    assert body["miners"] == 1 and body["miners_online"] == 1
    assert body["hashrate_ths"] == 80.0 and body["by_state"]["error"] == 1
    assert body["worst_by_temperature"][0]["serial"] == fleet.miners[("site-b", "client-y")].serial
    assert {w["serial"] for w in body["worst_by_temperature"]} == {fleet.miners[("site-b", "client-y")].serial}


def test_operator_summary_covers_the_whole_site(api, fleet):
    login(api, fleet, "siteowner_a")
    body = api.get(url("summary", fleet.site_a.pk)).json()
    assert body["scope"] == "site"
    assert body["miners"] == 3 and body["miners_reporting"] == 3 and body["miners_online"] == 2
    assert body["online_pct"] == pytest.approx(66.7)
    assert body["by_state"] == {"hashing": 2, "idle": 0, "error": 0, "offline": 1}
    assert body["hashrate_ths"] == 250.0 and body["nominal_hashrate_ths"] == 600.0
    assert body["hashrate_pct_of_nominal"] == pytest.approx(41.7)
    assert body["power_kw"] == 6.1
    hist = {b["label"]: b["miners"] for b in body["temperature_histogram"]}
    assert hist["80–85"] == 1 and hist["60–65"] == 1 and sum(hist.values()) == 2
    assert [w["temp_chip_max_c"] for w in body["worst_by_temperature"]] == [81.0, 62.0]
    assert [w["hashrate_pct_of_nominal"] for w in body["worst_by_hashrate"]] == [50.0, 75.0]


def test_summary_counts_open_alerts_in_scope(api, fleet):
    now = timezone.now()
    for key, severity in ((("site-a", "client-x"), "critical"), (("site-a", "client-y"), "warning")):
        miner = fleet.miners[key]
        Alert.objects.create(
            site=fleet.site_a, miner=miner, customer=miner.customer, alert_type="chip_temp_above", severity=severity,
            message="hot", dedupe_key=f"k{miner.pk}", first_seen=now, last_seen=now,
        )  # fmt: skip
    login(api, fleet, "client_x")
    body = api.get(url("summary", fleet.site_a.pk)).json()
    assert body["open_alerts"] == {"info": 0, "warning": 0, "critical": 1}
    assert [a["serial"] for a in body["recent_alerts"]] == [fleet.miners[("site-a", "client-x")].serial]
    login(api, fleet, "owner")
    assert api.get(url("summary", fleet.site_a.pk)).json()["open_alerts"]["warning"] == 1


@pytest.mark.parametrize("kind", ["live", "summary", "history"])
def test_site_owner_without_grant_gets_404(api, fleet, kind):
    login(api, fleet, "siteowner_b_ro")
    response = api.get(url(kind, fleet.site_a.pk))
    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"
    assert api.get(url(kind, fleet.site_a.pk), {"format": "csv"}).status_code == 404
    assert api.get(url(kind, fleet.site_b.pk)).status_code == 200


def test_hidden_miner_history_is_404_for_site_owner_and_other_client(api, fleet):
    miner = fleet.miners[("site-a", "client-x")]
    for name in ("siteowner_b_ro", "client_y"):
        login(api, fleet, name)
        response = api.get(f"/api/v1/telemetry/miners/{miner.pk}/history")
        assert response.status_code == 404, name
        assert response.json()["error_code"] == "not_found"
    login(api, fleet, "client_x")
    assert api.get(f"/api/v1/telemetry/miners/{miner.pk}/history").status_code == 200


def test_guest_and_anonymous_are_refused(api, fleet):
    assert api.get(url("live", fleet.site_a.pk)).status_code in (401, 403)
    login(api, fleet, "guest")
    assert api.get(url("summary", fleet.site_a.pk)).status_code == 403
    assert api.get("/api/v1/telemetry/daily").status_code == 403


def test_client_site_history_sums_its_own_miners_never_the_site(api, fleet):
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    start -= timedelta(minutes=start.minute % 5)
    rows = []
    for i in range(3):
        bucket = start + timedelta(minutes=5 * i)
        for key, ths in ((("site-a", "client-x"), 100.0), (("site-a", "client-y"), 150.0), (("site-a", "own"), 10.0)):
            miner = fleet.miners[key]
            rows.append(History5m(
                miner=miner, bucket=bucket, site_id=miner.site_id, customer_id=miner.customer_id, sample_count=5,
                hashing_count=5, uptime_fraction=1,
                avg_hashrate_ths=ths, avg_power_w=3000.0, avg_temp_chip_max_c=70.0, max_temp_chip_max_c=75.0,
            ))  # fmt: skip
    History5m.objects.bulk_create(rows)
    SiteHistory5m.objects.bulk_create(
        [
            SiteHistory5m(
                site=fleet.site_a,
                bucket=start + timedelta(minutes=5 * i),
                miners_reporting=3,
                miners_hashing=3,
                hashrate_ths=260.0,
                power_w=9000.0,
                uptime_fraction=1,
            )
            for i in range(3)
        ]
    )
    params = {"from": (start - timedelta(minutes=1)).isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    login(api, fleet, "client_x")
    body = api.get(url("history", fleet.site_a.pk), params).json()
    assert body["scope"] == "customers" and body["layer"] == "5m"
    assert [p["hashrate_ths"] for p in body["points"]] == [100.0, 100.0, 100.0]
    assert [p["power_w"] for p in body["points"]] == [3000.0] * 3
    rows = csv_rows(api.get(url("history", fleet.site_a.pk), {**params, "format": "csv"}))
    assert rows[0][1] == "Fleet hashrate (TH/s)" and {r[1] for r in rows[1:]} == {"100.0"}
    login(api, fleet, "owner")
    body = api.get(url("history", fleet.site_a.pk), params).json()
    assert body["scope"] == "site" and [p["hashrate_ths"] for p in body["points"]] == [260.0] * 3


def test_client_daily_history_and_reports_are_its_own(api, fleet):
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(3)]
    rows = []
    for day in days:
        for key, ths in ((("site-a", "client-x"), 100.0), (("site-a", "client-y"), 150.0)):
            miner = fleet.miners[key]
            rows.append(Daily(
                miner=miner, day=day, site_id=miner.site_id,
                   customer_id=miner.customer_id, sample_count=1440,
                buckets_reported=288, avg_hashrate_ths=ths, energy_kwh=72.0, uptime_pct=100.0, max_temp_chip_c=80.0,
            ))  # fmt: skip
    Daily.objects.bulk_create(rows)
    SiteDaily.objects.bulk_create(
        [
            SiteDaily(
                site=fleet.site_a, day=d, miners_reporting=3, avg_hashrate_ths=999.0, energy_kwh=500.0, uptime_pct=99.0
            )
            for d in days
        ]
    )
    params = {"from": "2026-01-01", "to": "2026-01-03", "resolution": "daily"}
    login(api, fleet, "client_y")
    body = api.get(url("history", fleet.site_a.pk), params).json()
    assert body["layer"] == "daily" and [p["hashrate_ths"] for p in body["points"]] == [150.0] * 3
    assert body["points"][0]["power_w"] == 3000.0  # 72 kWh over 24 h
    daily = api.get("/api/v1/telemetry/daily", {"from": "2026-01-01", "to": "2026-01-03"}).json()
    assert daily["count"] == 3
    assert {r["serial"] for r in daily["results"]} == {fleet.miners[("site-a", "client-y")].serial}
    rows = csv_rows(api.get("/api/v1/telemetry/daily", {"from": "2026-01-01", "to": "2026-01-03", "format": "csv"}))
    assert len(rows) == 4 and {r[1] for r in rows[1:]} == {fleet.miners[("site-a", "client-y")].serial}
    # Asking for the other client's rows by id gives nothing.
    other = api.get(
        "/api/v1/telemetry/daily", {"from": "2026-01-01", "to": "2026-01-03", "customer": fleet.client_x.pk}
    )
    assert other.json()["count"] == 0
    login(api, fleet, "owner")
    body = api.get(url("history", fleet.site_a.pk), params).json()
    assert [p["hashrate_ths"] for p in body["points"]] == [999.0] * 3
    assert api.get("/api/v1/telemetry/daily", {"from": "2026-01-01", "to": "2026-01-03"}).json()["count"] == 6


# --- live filters and keyset pages ---------------------------------------------------------------------


def test_live_filters(api, fleet):
    login(api, fleet, "owner")

    def serials(**params):
        body = api.get(url("live", fleet.site_b.pk), params).json()
        return {r["serial"] for r in body["results"]}

    m = fleet.miners
    assert serials(status="error") == {m[("site-b", "client-y")].serial}
    assert serials(status="idle") == {m[("site-b", "own")].serial}
    assert serials(status="online") == {m[("site-b", k)].serial for k in ("client-x", "client-y", "own")}
    assert serials(temp_above=60) == {m[("site-b", "client-y")].serial}
    assert serials(temp_below=50) == {m[("site-b", "own")].serial}
    assert serials(hashrate_below_ths=85) == {m[("site-b", "client-y")].serial, m[("site-b", "own")].serial}
    assert serials(zone=fleet.zone_b.pk) == serials()
    assert serials(zone=fleet.zone_a.pk) == set()
    body = api.get(url("live", fleet.site_a.pk), {"status": "offline"}).json()
    assert [(r["serial"], r["state"], r["online"]) for r in body["results"]] == [
        (m[("site-a", "own")].serial, "offline", False)
    ]


def test_offline_after_is_a_setting(api, fleet, settings):
    login(api, fleet, "owner")
    settings.TELEMETRY_LIVE_OFFLINE_AFTER_S = 7200
    body = api.get(url("live", fleet.site_a.pk), {"status": "offline"}).json()
    assert body["results"] == []  # an hour of silence is not offline any more


@pytest.fixture
def big_site(farm):
    """57 miners on a new site with ties, nulls and every status."""
    zone = ZoneFactory(name="Big")
    model = MinerModelFactory()
    miners = [MinerFactory(zone=zone, site=zone.site, model=model) for _ in range(57)]
    now = timezone.now()
    statuses = ["hashing", "idle", "error", "offline"]
    LiveStatus.objects.bulk_create(
        [
            live(
                miner,
                now=now,
                age_s=10 + (i % 7) * 100,
                status=statuses[i % 4],
                ths=None if i % 9 == 0 else float(150 + i % 5),
                temp=None if i % 6 == 0 else float(60 + i % 4),
            )
            for i, miner in enumerate(miners)
        ]
    )
    return zone.site


SORT_KEYS = {
    "serial": lambda r: r.miner.serial,
    "status": lambda r: r.status,
    "temperature": lambda r: r.temp_chip_max_c,
    "hashrate": lambda r: r.hashrate_ghs,
    "last_seen": lambda r: r.last_seen,
}


@pytest.mark.parametrize("sort", [*SORT_KEYS, *(f"-{k}" for k in SORT_KEYS)])
def test_keyset_pages_are_complete_and_in_order(api, farm, big_site, sort):
    login(api, farm, "owner")
    seen, pages = [], 0
    params = {"sort": sort, "limit": 10}
    link = url("live", big_site.pk)
    while link:
        body = api.get(link, params if pages == 0 else None).json()
        seen += [r["miner"] for r in body["results"]]
        link = body["next"]
        pages += 1
        assert pages < 20
    key, desc = sort.lstrip("-"), sort.startswith("-")
    rows = list(LiveStatus.objects.filter(site_id=big_site.pk).select_related("miner"))
    with_value = sorted((r for r in rows if SORT_KEYS[key](r) is not None),
                        key=lambda r: (SORT_KEYS[key](r), r.miner_id), reverse=desc)  # fmt: skip
    nulls = sorted((r.miner_id for r in rows if SORT_KEYS[key](r) is None), reverse=desc)
    assert seen == [r.miner_id for r in with_value] + nulls
    assert pages == 6 and len(set(seen)) == 57


def test_keyset_page_stays_stable_when_rows_change_meanwhile(api, farm, big_site):
    login(api, farm, "owner")
    first = api.get(url("live", big_site.pk), {"sort": "-temperature", "limit": 20}).json()
    # A miner already shown heats up (would jump to the top): the next page neither repeats nor skips.
    LiveStatus.objects.filter(pk=first["results"][5]["miner"]).update(temp_chip_max_c=120.0)
    seen = [r["miner"] for r in first["results"]]
    link = first["next"]
    while link:
        body = api.get(link).json()
        seen += [r["miner"] for r in body["results"]]
        link = body["next"]
    assert len(seen) == len(set(seen)) == 57


def test_bad_cursor_and_sort_are_400(api, fleet, big_site):
    login(api, fleet, "owner")
    page = api.get(url("live", big_site.pk), {"sort": "temperature", "limit": 5}).json()
    # A cursor of one sort used with another is refused, not misread.
    response = api.get(url("live", big_site.pk), {"sort": "hashrate", "cursor": page["next_cursor"]})
    assert response.status_code == 400 and response.json()["error_code"] == "bad_cursor"
    response = api.get(url("live", big_site.pk), {"cursor": "!!notbase64"})
    assert response.status_code == 400 and response.json()["error_code"] == "bad_cursor"
    response = api.get(url("live", big_site.pk), {"sort": "nonsense"})
    assert response.status_code == 400 and response.json()["error_code"] == "validation_error"
    assert "sort" in response.json()["details"]
    response = api.get(url("live", big_site.pk), {"status": "melting", "format": "csv"})
    assert response.status_code == 400 and response.json()["error_code"] == "validation_error"
    assert api.get(url("live", big_site.pk), {"limit": 0}).status_code == 400


# --- history: layers and bad input -----------------------------------------------------------------------


def test_layer_follows_range_and_resolution():
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)

    def layer(hours, resolution="auto", ago_h=0, site=False):
        end = now - timedelta(hours=ago_h)
        start = end - timedelta(hours=hours)
        rng = sel.history_range(start=start.isoformat(), end=end.isoformat(), resolution=resolution,
                                site_level=site, now=now)  # fmt: skip
        return rng.layer, rng.bucket_s

    assert layer(24) == ("raw", 0)
    assert layer(6, ago_h=72) == ("5m", 0)  # raw is kept 24 h: an older day reads the 5-minute layer
    assert layer(24, site=True) == ("5m", 0)
    assert layer(24 * 7) == ("5m", 0)  # 2,016 windows fit: no bucketing
    assert layer(24 * 90) == ("5m", 3600)  # 25,920 windows → hourly averages
    assert layer(24 * 91) == ("daily", 0)
    assert layer(24 * 400, ago_h=24 * 30) == ("daily", 0)
    assert layer(2, "daily") == ("daily", 0)
    assert layer(2, "5m") == ("5m", 0)
    assert layer(24 * 3650) == ("daily", 2 * 86400)


def test_miner_history_reads_the_chosen_layer(api, fleet):
    miner = fleet.miners[("site-a", "client-x")]
    now = timezone.now().replace(microsecond=0)
    RawSample.objects.bulk_create(
        [RawSample(miner=miner, ts=now - timedelta(minutes=i), site_id=miner.site_id,
                   customer_id=miner.customer_id, hashrate_ths=100.0 + i,
                   temp_chip_max_c=70.0, fan_rpm=[6000, 6400], power_w=3000.0, status="hashing") for i in range(30)]
    )  # fmt: skip
    History5m.objects.bulk_create(
        [History5m(miner=miner, bucket=now - timedelta(days=3, minutes=5 * i), site_id=miner.site_id,
                   customer_id=miner.customer_id, sample_count=5,
                   hashing_count=5, uptime_fraction=1, avg_hashrate_ths=120.0, avg_fan_rpm=6100.0) for i in range(10)]
    )  # fmt: skip
    login(api, fleet, "client_x")
    history = f"/api/v1/telemetry/miners/{miner.pk}/history"
    body = api.get(history, {"from": (now - timedelta(hours=1)).isoformat()}).json()
    assert body["layer"] == "raw" and body["step_s"] == 60 and not body["downsampled"]
    assert len(body["points"]) == 30 and body["points"][-1]["hashrate_ths"] == 100.0
    assert body["points"][0]["fan_rpm"] == 6200.0 and body["nominal_hashrate_ths"] == 200.0
    body = api.get(history, {"from": (now - timedelta(days=7)).isoformat(), "to": now.isoformat()}).json()
    assert body["layer"] == "5m" and len(body["points"]) == 10 and body["points"][0]["hashrate_ths"] == 120.0
    rows = csv_rows(api.get(history, {"from": (now - timedelta(days=7)).isoformat(), "format": "csv"}))
    assert rows[0][:2] == ["Time (UTC)", "Hashrate (TH/s)"] and len(rows) == 11


def test_long_5m_ranges_are_averaged_into_buckets_by_the_database(api, fleet):
    miner = fleet.miners[("site-a", "client-x")]
    end = datetime(2026, 11, 20, tzinfo=UTC)
    start = end - timedelta(days=30)
    History5m.objects.bulk_create(
        [History5m(miner=miner, bucket=start + timedelta(minutes=5 * i), site_id=miner.site_id,
                   customer_id=miner.customer_id, sample_count=5,
                   hashing_count=5, uptime_fraction=1, avg_hashrate_ths=float(i % 4), max_temp_chip_max_c=float(i % 4))
         for i in range(30 * 288)]
    )  # fmt: skip
    login(api, fleet, "owner")
    body = api.get(
        f"/api/v1/telemetry/miners/{miner.pk}/history",
        {"from": start.isoformat(), "to": end.isoformat(), "resolution": "5m"},
    ).json()
    assert body["downsampled"] and body["step_s"] == 1800  # six windows per point
    assert len(body["points"]) == 30 * 48 <= sel.MAX_POINTS
    assert body["points"][0] == {**body["points"][0], "hashrate_ths": 1.167, "temp_chip_peak_c": 3.0}
    assert body["points"][0]["t"].startswith("2026-10-21T00:00:00")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "yesterday"}, "bad_date"),
        ({"to": "2026-13-45"}, "bad_date"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "bad_range"),
        ({"resolution": "hourly"}, "bad_resolution"),
        ({"from": "2026-11-01", "to": "2026-11-05", "resolution": "raw"}, "range_too_large"),
        ({"from": "2026-01-01", "to": "2026-11-05", "resolution": "5m"}, "range_too_large"),
        ({"from": "2010-01-01", "to": "2026-11-05"}, "range_too_large"),
    ],
)
def test_bad_history_input_is_400(api, fleet, params, code):
    login(api, fleet, "owner")
    miner = fleet.miners[("site-a", "own")]
    paths = [f"/api/v1/telemetry/miners/{miner.pk}/history", url("history", fleet.site_a.pk)]
    if params.get("resolution") == "raw":
        paths = paths[:1]  # a site has no raw layer: bad_resolution (test_site_history_refuses_raw)
    for path in paths:
        response = api.get(path, params)
        assert response.status_code == 400, path
        body = response.json()
        assert body["error_code"] == code and body["message"] and "request_id" in body


def test_site_history_refuses_raw(api, fleet):
    login(api, fleet, "owner")
    response = api.get(url("history", fleet.site_a.pk), {"resolution": "raw"})
    assert response.status_code == 400 and response.json()["error_code"] == "bad_resolution"


def test_daily_report_bad_input(api, fleet):
    login(api, fleet, "owner")
    response = api.get("/api/v1/telemetry/daily", {"from": "2025-01-01", "to": "2026-06-01"})
    assert response.status_code == 400 and response.json()["error_code"] == "range_too_large"
    response = api.get("/api/v1/telemetry/daily", {"site": "abc"})
    assert response.status_code == 400 and response.json()["error_code"] == "validation_error"


def test_schema_documents_the_telemetry_endpoints(api, fleet):
    login(api, fleet, "owner")
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/telemetry/sites/{site_id}/live", "/api/v1/telemetry/sites/{site_id}/summary",
                 "/api/v1/telemetry/miners/{miner_id}/history", "/api/v1/telemetry/daily"):  # fmt: skip
        assert path in paths


def test_a_client_sees_only_the_days_a_miner_was_its_own(api, fleet):
    miner = fleet.miners[("site-a", "client-x")]
    Daily.objects.bulk_create(
        [
            Daily(miner=miner, day=date(2026, 3, d), site_id=miner.site_id, customer_id=owner.pk, sample_count=1440,
                  buckets_reported=288, avg_hashrate_ths=ths, energy_kwh=72.0, uptime_pct=100.0)
            for d, owner, ths in ((1, fleet.client_y, 111.0), (2, fleet.client_x, 222.0))
        ]
    )  # fmt: skip
    params = {"from": "2026-03-01", "to": "2026-03-02", "resolution": "daily"}
    login(api, fleet, "client_x")
    body = api.get(f"/api/v1/telemetry/miners/{miner.pk}/history", params).json()
    assert [p["hashrate_ths"] for p in body["points"]] == [222.0]  # 1 March was client Y's
    login(api, fleet, "owner")
    body = api.get(f"/api/v1/telemetry/miners/{miner.pk}/history", params).json()
    assert [p["hashrate_ths"] for p in body["points"]] == [111.0, 222.0]
