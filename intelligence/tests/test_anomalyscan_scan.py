"""The anomaly scan against the database: alerts raised through the telemetry alert service, one per miner and
metric, resolved when the newest hour is normal again; a run with no new window is one query. Runs on SQLite
and, with DATABASE_URL, on PostgreSQL (where the history is read by binary COPY)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import translation

from hashinsight.tests.factories import MinerFactory, SiteFactory, ZoneFactory
from intelligence import anomaly_scan as scan
from telemetry import alert_messages
from telemetry.alert_types import alert_type_label
from telemetry.models import Alert, History5m, RollupCursor
from telemetry.rollups import CURSOR_5M

pytestmark = pytest.mark.django_db
W = timedelta(minutes=5)
END = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # the newest complete window ends here


@pytest.fixture
def fleet():
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    return [MinerFactory(zone=zone, site=site) for _ in range(20)]


def seed(miners, *, start, end, hashrate=None, temp=None, power=None, seed=0):
    """5-minute rows for every miner from ``start`` to ``end``; each metric a function (miner index, epoch
    seconds array) → values, defaulting to a flat level with 0.3 % noise."""
    rng = np.random.default_rng(seed)
    n = int((end - start) / W)
    t = np.array([(start + k * W).timestamp() for k in range(n)])
    rows = []
    for i, m in enumerate(miners):
        h = hashrate(i, t) if hashrate else np.full(n, 200.0)
        c = temp(i, t) if temp else np.full(n, 70.0)
        p = power(i, t) if power else np.full(n, 3500.0)
        h = h * (1 + 0.003 * rng.standard_normal(n))
        c = c + 0.3 * rng.standard_normal(n)
        p = p * (1 + 0.003 * rng.standard_normal(n))
        for k in range(n):
            rows.append(
                History5m(
                    miner=m, bucket=start + k * W, site_id=m.site_id, customer_id=m.customer_id, sample_count=5,
                    hashing_count=5, uptime_fraction=1.0, avg_hashrate_ths=float(h[k]),
                    avg_temp_chip_max_c=float(c[k]), avg_power_w=float(p[k]),
                )
            )  # fmt: skip
    History5m.objects.bulk_create(rows, batch_size=2000)


def rolled_up_to(end):
    RollupCursor.objects.update_or_create(layer=CURSOR_5M, defaults={"done_until": end})


def drop_on(index, factor, since):
    def hashrate(i, t):
        h = np.full(len(t), 200.0)
        if i == index:
            h[t >= since.timestamp()] *= factor
        return h

    return hashrate


def open_anomalies():
    return Alert.objects.filter(alert_type__in=scan.ALERT_TYPES).exclude(status=Alert.Status.RESOLVED)


def test_a_hashrate_drop_on_one_miner_among_many_raises_exactly_one_alert_with_a_reason(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(7, 0.65, END - 6 * W))
    rolled_up_to(END)
    result = scan.anomaly_scan()
    assert result.miners == 20 and result.raised == 1
    alert = Alert.objects.get()
    assert (alert.miner_id, alert.alert_type, alert.status) == (fleet[7].pk, "anomaly_hashrate", "open")
    assert alert.severity == "critical"  # 35 % against a 0.5 % spread
    found = re.fullmatch(
        r"Hashrate (\d+\.\d) TH/s over the last hour is (\d+) % below its usual (\d+\.\d) TH/s \(robust z [\d.,]+\)\.",
        alert.message,
    )
    assert found, alert.message
    assert float(found[1]) == pytest.approx(130, abs=1.5) and found[2] in ("34", "35", "36")
    assert float(found[3]) == pytest.approx(200, abs=0.3)
    assert alert.evidence["detector"] == "mad"  # one day of history: no daily season yet
    assert alert.evidence["reason"].startswith("hashrate 35 % below its usual level")
    assert alert.evidence["windows_flagged"] == 6
    assert alert.evidence["msg"]["id"] == "anomaly_hashrate_below"
    assert alert.customer_id == fleet[7].customer_id and alert.site_id == fleet[7].site_id


def test_a_short_blip_is_not_an_anomaly(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(3, 0.5, END - 2 * W))  # 10 min only
    rolled_up_to(END)
    assert scan.anomaly_scan().raised == 0
    assert not Alert.objects.exists()


def test_a_daily_cycle_raises_none_but_a_hot_miner_against_it_does(fleet):
    def temp(i, t):
        cycle = 8.0 * np.sin(2 * np.pi * ((t / 3600) % 24 - 9) / 24)  # the hall's inlet, ±8 °C over the day
        c = 68.0 + cycle
        if i == 11:
            c[t >= (END - 4 * W).timestamp()] += 9.0  # as hot as the afternoon peak, but at 3 am
        return c

    def power(i, t):
        return 3500.0 + 40.0 * np.sin(2 * np.pi * ((t / 3600) % 24 - 9) / 24)  # fans follow the heat

    seed(fleet, start=END - timedelta(days=3), end=END, temp=temp, power=power)
    rolled_up_to(END)
    result = scan.anomaly_scan()
    alerts = list(open_anomalies())
    assert [(a.miner_id, a.alert_type) for a in alerts] == [(fleet[11].pk, "anomaly_temperature")]
    assert result.raised == 1
    assert alerts[0].evidence["detector"] == "mad_seasonal"
    assert "for this time of day" in alerts[0].message
    # the same cycle scored without its season would not be silent at the peaks and troughs of the day: the
    # seasonal baseline is what keeps the other 19 quiet
    assert alerts[0].evidence["msg"]["id"] == "anomaly_temperature_above_tod"


def test_rerunning_without_new_windows_changes_nothing_and_costs_one_query(fleet, django_assert_num_queries):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(2, 0.6, END - 6 * W))
    rolled_up_to(END)
    scan.anomaly_scan()
    before = list(Alert.objects.values_list("pk", "count", "last_seen", "status"))
    assert len(before) == 1
    with django_assert_num_queries(1):
        again = scan.anomaly_scan()
    assert again.skipped
    assert list(Alert.objects.values_list("pk", "count", "last_seen", "status")) == before


def test_a_new_window_counts_onto_the_open_alert_and_recovery_resolves_it(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(4, 0.6, END - 6 * W))
    rolled_up_to(END)
    scan.anomaly_scan()
    alert = Alert.objects.get()
    # five minutes later, still low: the same alert, counted once more (deduplicated)
    seed([fleet[4]], start=END, end=END + W, hashrate=lambda i, t: np.full(len(t), 120.0), seed=1)
    seed(fleet[:4] + fleet[5:], start=END, end=END + W, seed=2)
    rolled_up_to(END + W)
    assert scan.anomaly_scan().raised == 1
    alert.refresh_from_db()
    assert (Alert.objects.count(), alert.count, alert.status) == (1, 2, "open")
    # an hour later the miner is back: the newest hour is normal again and the alert is resolved
    later = END + W + timedelta(hours=1)
    seed(fleet, start=END + W, end=later, seed=3)
    rolled_up_to(later)
    result = scan.anomaly_scan()
    alert.refresh_from_db()
    assert result.resolved == 1 and result.raised == 0
    assert alert.status == "resolved"
    assert alert.resolution_note == scan.CLEARED_NOTES["hashrate"]
    assert not open_anomalies().exists()


def test_a_miner_in_maintenance_is_not_alerted_and_its_open_alert_resolves(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(5, 0.6, END - 6 * W))
    rolled_up_to(END)
    scan.anomaly_scan()
    assert open_anomalies().count() == 1
    fleet[5].status = "maintenance"
    fleet[5].save(update_fields=["status"])
    scan.anomaly_scan(force=True)
    assert not open_anomalies().exists()
    assert Alert.objects.get().resolution_note == scan.NOT_MONITORED_NOTE


def test_idle_windows_are_not_a_hashrate_anomaly(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(9, 0.02, END - 6 * W))
    History5m.objects.filter(miner=fleet[9], bucket__gte=END - 6 * W).update(uptime_fraction=0.0, hashing_count=0)
    rolled_up_to(END)
    scan.anomaly_scan()
    assert not Alert.objects.filter(alert_type="anomaly_hashrate").exists()


def test_without_a_rollup_cursor_the_newest_window_is_read_from_the_history(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(1, 0.6, END - 6 * W))
    result = scan.anomaly_scan()
    assert result.window_end == END.isoformat() and result.raised == 1


def test_the_alert_message_translates_and_reads_like_the_stored_english(fleet):
    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(6, 0.7, END - 6 * W))
    rolled_up_to(END)
    scan.anomaly_scan()
    alert = Alert.objects.get()
    msg = alert.evidence["msg"]
    assert msg["id"] in alert_messages.CATALOG
    with translation.override("en"):
        assert alert_messages.alert_message(alert) == alert.message
        assert alert_type_label("anomaly_hashrate") == "Hashrate anomaly"
    with translation.override("zh-hans"):
        assert alert_messages.render(msg["id"], msg["params"]) is not None  # fits the sentence's parameters


PARAMS = {"value": "131.6", "expected": "200.0", "pct": "34", "delta": "9.1", "score": "68.4"}


@pytest.mark.parametrize("msg_id", sorted(scan.MESSAGES))
def test_every_scan_message_reads_exactly_like_its_catalog_sentence(msg_id):
    with translation.override("en"):
        assert alert_messages.render(msg_id, PARAMS) == scan.MESSAGES[msg_id].format(**PARAMS)


def test_the_task_runs_the_scan_as_a_recorded_job(fleet):
    from hashinsight.events.models import JobRun
    from intelligence.anomaly_tasks import anomaly_scan_task

    seed(fleet, start=END - timedelta(hours=26), end=END, hashrate=drop_on(8, 0.6, END - 6 * W))
    rolled_up_to(END)
    anomaly_scan_task.delay()
    anomaly_scan_task.delay()  # nothing new: skipped
    runs = list(JobRun.objects.filter(job_type="intelligence_anomaly_scan").order_by("pk"))
    assert [r.status for r in runs] == ["success", "success"]
    assert runs[0].result["raised"] == 1 and runs[0].processed == 20
    assert runs[1].result["skipped"] is True
    assert anomaly_scan_task.name == "intelligence.anomaly_scan"
