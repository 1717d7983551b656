"""The rule engine against the database: one open alert per miner and kind (count, first and last
seen), auto-resolve when the condition clears (acknowledged or not), the outbox events the WebSocket
follows, the handlers and the offline job, rules from the cache, and a bounded number of queries for
a batch of 1,000 miners."""

from __future__ import annotations

import math
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from hashinsight.events import outbox
from hashinsight.events.contracts import TelemetryIngested, TelemetryRolledUp
from hashinsight.events.models import JobRun, OutboxEvent
from hashinsight.events.registry import handlers_for
from hashinsight.tests.factories import MinerFactory, MinerModelFactory
from miners.models import Miner
from telemetry import rule_engine, rule_handlers, rule_services, services
from telemetry import rules as R
from telemetry.models import Alert, History5m, LiveStatus, RawSample

pytestmark = pytest.mark.django_db


def live(miner, *, ago_s=10, status="hashing", ths=200.0, temp=70.0, power=3500.0, now=None):
    now = now or timezone.now()
    row, _ = LiveStatus.objects.update_or_create(
        miner=miner,
        defaults={
            "site_id": miner.site_id, "customer_id": miner.customer_id, "last_seen": now - timedelta(seconds=ago_s),
            "hashrate_ghs": None if ths is None else ths * 1000, "temp_chip_max_c": temp, "power_w": power,
            "status": status, "updated_at": now,
        },
    )  # fmt: skip
    return row


def ingest(site, miners, *, newest_ts=None):
    payload = TelemetryIngested(
        site_id=site.pk, device_id=1, accepted=len(miners), miner_ids=[m.pk for m in miners],
        newest_ts=newest_ts or timezone.now() - timedelta(seconds=5),
    )  # fmt: skip
    rule_handlers.evaluate_ingested([(payload, None)])


def open_alerts(**kw):
    return list(Alert.objects.exclude(status=Alert.Status.RESOLVED).filter(**kw).order_by("pk"))


def alert_events():
    return [e.event_type for e in OutboxEvent.objects.filter(event_type__startswith="alert.").order_by("created_at")]


@pytest.fixture
def hot_miner(farm):
    miner = farm.miners[("site-a", "client-x")]
    live(miner, temp=95.0)
    return miner


def test_the_handlers_and_the_job_are_registered():
    assert "telemetry.rule_handlers.evaluate_ingested" in [h.name for h in handlers_for("telemetry.ingested")]
    assert [h.batch for h in handlers_for("telemetry.ingested") if h.fn is rule_handlers.evaluate_ingested] == [True]
    assert rule_handlers.evaluate_rolled_up in [h.fn for h in handlers_for("telemetry.rolled_up")]
    assert rule_handlers.rules_changed in [h.fn for h in handlers_for("alert_rules.changed")]
    from hashinsight.events.schedules import SCHEDULES

    assert ("telemetry.evaluate_offline", 60) in [(task, every) for _, task, every, *_ in SCHEDULES]


def test_repeated_ingest_keeps_one_open_alert_counting_up(farm, hot_miner):
    ingest(farm.site_a, [hot_miner])
    ingest(farm.site_a, [hot_miner])
    ingest(farm.site_a, [hot_miner])
    (alert,) = open_alerts(miner=hot_miner)
    assert (alert.alert_type, alert.severity, alert.count, alert.status) == (R.CHIP_TEMP_ABOVE, "critical", 3, "open")
    assert alert.dedupe_key == f"{farm.site_a.pk}:{hot_miner.pk}:{R.CHIP_TEMP_ABOVE}"
    assert (alert.site_id, alert.customer_id) == (farm.site_a.pk, farm.client_x.pk)
    assert alert.last_seen > alert.first_seen
    assert alert.message == "Chip temperature 95.0 °C is above 90.0 °C."
    assert alert.evidence["temp_chip_max_c"] == 95.0
    assert alert_events() == ["alert.raised", "alert.updated", "alert.updated"]
    raised = OutboxEvent.objects.get(event_type="alert.raised")
    assert raised.payload["miner_id"] == hot_miner.pk and raised.payload["customer_id"] == farm.client_x.pk


def test_the_alert_resolves_itself_when_the_condition_clears(farm, hot_miner):
    ingest(farm.site_a, [hot_miner])
    (alert,) = open_alerts(miner=hot_miner)
    live(hot_miner, temp=80.0)
    ingest(farm.site_a, [hot_miner])
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by, alert.count) == ("resolved", None, 1)
    assert alert.resolution_note == "Condition cleared: chip temperature at or below 90 °C."
    assert alert_events() == ["alert.raised", "alert.resolved"]
    # Hot again: a new alert, not the resolved one counted up.
    live(hot_miner, temp=96.0)
    ingest(farm.site_a, [hot_miner])
    (again,) = open_alerts(miner=hot_miner)
    assert again.pk != alert.pk and again.count == 1


def test_an_acknowledged_alert_still_counts_and_resolves_itself(farm, hot_miner):
    ingest(farm.site_a, [hot_miner])
    (alert,) = open_alerts(miner=hot_miner)
    services.alerts_acknowledge(alert_ids=[alert.pk], actor=farm.users["siteowner_a"], note="on it")
    ingest(farm.site_a, [hot_miner])
    alert.refresh_from_db()
    assert (alert.status, alert.count) == ("acknowledged", 2)
    live(hot_miner, temp=70.0)
    ingest(farm.site_a, [hot_miner])
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.ack_note == "on it"


def test_nothing_is_raised_or_resolved_for_other_miners_and_other_alert_types(farm, hot_miner):
    cool = farm.miners[("site-a", "own")]
    live(cool, temp=60.0)
    manual = services.alert_raise(site=farm.site_a, miner=cool, alert_type="fan", severity="warning", message="m")
    ingest(farm.site_a, [hot_miner, cool])
    assert [a.miner_id for a in open_alerts(alert_type=R.CHIP_TEMP_ABOVE)] == [hot_miner.pk]
    manual.refresh_from_db()
    assert manual.status == "open"


def test_a_duration_rule_at_ingest_needs_the_windows_of_history(farm):
    miner = farm.miners[("site-a", "own")]
    now = timezone.now()
    live(miner, ths=120.0, now=now)  # 60 % of the S21's 200 TH/s
    ingest(farm.site_a, [miner], newest_ts=now)
    assert open_alerts(miner=miner) == []  # no history yet: pending
    end = R.floor_window(now)
    History5m.objects.bulk_create(
        History5m(miner=miner, bucket=end - (i + 1) * R.WINDOW, site_id=miner.site_id, sample_count=5,
                  hashing_count=5, uptime_fraction=1.0, avg_hashrate_ths=118.0)
        for i in range(3)
    )  # fmt: skip
    ingest(farm.site_a, [miner], newest_ts=now)
    (alert,) = open_alerts(miner=miner)
    assert (alert.alert_type, alert.severity) == (R.HASHRATE_BELOW_PCT, "warning")
    assert alert.evidence["duration_minutes"] == 15


def test_a_miner_in_maintenance_is_not_alerted_and_its_open_alert_resolves(farm, hot_miner):
    ingest(farm.site_a, [hot_miner])
    (alert,) = open_alerts(miner=hot_miner)
    Miner.objects.filter(pk=hot_miner.pk).update(status=Miner.Status.MAINTENANCE)
    ingest(farm.site_a, [hot_miner])
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.resolution_note == rule_engine.NOT_MONITORED_NOTE
    ingest(farm.site_a, [hot_miner])
    assert open_alerts(miner=hot_miner) == []


def test_an_old_backlog_is_not_judged(farm, hot_miner):
    ingest(farm.site_a, [hot_miner], newest_ts=timezone.now() - timedelta(minutes=20))
    assert open_alerts() == []


def test_through_the_outbox_the_ingest_event_raises_the_alert(farm, hot_miner, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.publish(
            "telemetry.ingested", aggregate=f"site:{farm.site_a.pk}",
            payload={"site_id": farm.site_a.pk, "device_id": 1, "accepted": 1, "miner_ids": [hot_miner.pk],
                     "newest_ts": timezone.now().isoformat()},
        )  # fmt: skip
    (alert,) = open_alerts(miner=hot_miner)
    assert alert.alert_type == R.CHIP_TEMP_ABOVE
    event = OutboxEvent.objects.get(event_type="telemetry.ingested")
    assert event.status == OutboxEvent.Status.DONE


# --- rules from the database and the cache ----------------------------------------------------------


def test_a_sites_saved_rules_apply_after_the_change_commits(farm, hot_miner, django_capture_on_commit_callbacks):
    ingest(farm.site_a, [hot_miner])  # caches the defaults
    (alert,) = open_alerts(miner=hot_miner)
    with django_capture_on_commit_callbacks(execute=True):
        rule_services.alert_rules_update(
            site=farm.site_a, actor=farm.users["owner"], changes={R.CHIP_TEMP_ABOVE: {"threshold": 100.0}}
        )
    ingest(farm.site_a, [hot_miner])
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.resolution_note == "Condition cleared: chip temperature at or below 100 °C."


def test_disabling_a_rule_resolves_its_open_alerts(farm, hot_miner, django_capture_on_commit_callbacks):
    ingest(farm.site_a, [hot_miner])
    with django_capture_on_commit_callbacks(execute=True):
        rule_services.alert_rules_update(
            site=farm.site_a, actor=farm.users["owner"], changes={R.CHIP_TEMP_ABOVE: {"enabled": False}}
        )
    assert open_alerts() == []
    assert Alert.objects.get().resolution_note == rule_engine.RULE_DISABLED_NOTE
    ingest(farm.site_a, [hot_miner])
    assert open_alerts() == []


def test_rules_are_read_once_then_from_the_cache(farm, django_assert_num_queries):
    rule_services.site_rules(site=farm.site_a)
    with django_assert_num_queries(1):
        first = rule_engine.rules_for_sites([farm.site_a.pk, farm.site_b.pk])
    with django_assert_num_queries(0):
        again = rule_engine.rules_for_sites([farm.site_a.pk, farm.site_b.pk])
    assert first == again
    assert first[farm.site_b.pk] == R.default_rules()  # never saved: the defaults


# --- rollup and the offline job ---------------------------------------------------------------------


def test_the_rollup_evaluates_the_reject_rate_of_the_whole_site(farm):
    miner = farm.miners[("site-b", "own")]
    now = timezone.now()
    live(miner, now=now)
    end = R.floor_window(now)
    History5m.objects.bulk_create(
        History5m(miner=miner, bucket=end - (i + 1) * R.WINDOW, site_id=miner.site_id, sample_count=5,
                  hashing_count=5, uptime_fraction=1.0, avg_hashrate_ths=200.0, avg_power_w=3500.0,
                  avg_temp_chip_max_c=70.0, accepted_shares=900, rejected_shares=100)
        for i in range(3)
    )  # fmt: skip
    payload = TelemetryRolledUp(
        layer="history_5m", window_start=end - R.WINDOW, window_end=end, site_ids=[farm.site_b.pk]
    )
    rule_handlers.evaluate_rolled_up(payload, None)
    (alert,) = open_alerts()
    assert (alert.miner_id, alert.alert_type) == (miner.pk, R.REJECT_RATE_ABOVE_PCT)
    assert alert.message == "Reject rate 10.00 % (300 of 3,000 shares) is above 2.00 % over 15 min."
    # A daily rollup, or one catching up on old windows, evaluates nothing.
    old = TelemetryRolledUp(
        layer="history_5m", window_start=end - timedelta(hours=2), window_end=end - timedelta(hours=2) + R.WINDOW,
        site_ids=[farm.site_b.pk],
    )  # fmt: skip
    rule_handlers.evaluate_rolled_up(old, None)
    assert Alert.objects.get().count == 1


def test_the_offline_job_raises_for_silent_miners_and_ingest_clears_them(farm):
    now = timezone.now()
    silent, fresh = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-y")]
    live(silent, ago_s=12 * 60, now=now)
    live(fresh, ago_s=20, now=now)
    result = rule_handlers.evaluate_offline.apply(kwargs={"trigger": "manual"}).get()
    assert result["raised"] == 1
    (alert,) = open_alerts()
    assert (alert.miner_id, alert.alert_type, alert.severity) == (silent.pk, R.OFFLINE_FOR, "warning")
    assert alert.message.startswith("No sample from the miner for 12 min")  # 11.7 min before its zone's freshest
    assert JobRun.objects.get(job_type="alert_rules_offline").status == JobRun.Status.SUCCESS
    rule_handlers.evaluate_offline.apply().get()
    alert.refresh_from_db()
    assert alert.count == 2
    live(silent, ago_s=5)
    ingest(farm.site_a, [silent])
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_note) == ("resolved", "Condition cleared: the miner is reporting again.")


def test_the_offline_job_does_not_flag_a_zone_whose_collector_went_quiet(farm):
    now = timezone.now()
    for miner in Miner.objects.filter(site=farm.site_a):
        live(miner, ago_s=20 * 60, now=now)  # every miner of the zone silent at once
    rule_handlers.evaluate_offline.apply().get()
    assert open_alerts() == []


def test_a_miner_reporting_offline_is_offline_since_its_last_good_sample(farm):
    miner = farm.miners[("site-a", "own")]
    now = timezone.now()
    samples = [(now - timedelta(minutes=m), "offline" if m <= 11 else "hashing") for m in range(14, -1, -1)]
    RawSample.objects.bulk_create(
        RawSample(miner=miner, ts=ts, site_id=miner.site_id, status=status) for ts, status in samples
    )
    live(miner, ago_s=0, status="offline", ths=0.0, now=now)
    ingest(farm.site_a, [miner], newest_ts=now)
    (alert,) = open_alerts(alert_type=R.OFFLINE_FOR)
    assert alert.message == "The miner has reported offline for 12 min."


# --- bulk: dedup across a batch, races, and the query bound -----------------------------------------


def test_two_first_raises_in_bulk_make_one_alert(farm):
    first = services.alert_raise(site=farm.site_a, alert_type="offline", severity="warning", message="one")
    real = services._open_alerts
    calls = []

    def misses_once(keys):
        calls.append(keys)
        return {} if len(calls) == 1 else real(keys)

    # The second raise looked before the first one committed, so it also tries to insert.
    other = farm.miners[("site-a", "own")]
    items = [
        services.AlertToRaise(site_id=farm.site_a.pk, alert_type="offline", severity="critical", message="two"),
        services.AlertToRaise(
            site_id=farm.site_a.pk, alert_type="offline", severity="warning", message="new", miner_id=other.pk
        ),
    ]
    with mock.patch.object(services, "_open_alerts", misses_once):
        second, new = services.alerts_raise(items)
    assert second.pk == first.pk
    alert = Alert.objects.get(pk=first.pk)
    assert (alert.count, alert.severity, alert.message) == (2, "critical", "two")
    assert Alert.objects.filter(site=farm.site_a, alert_type="offline", miner=None).count() == 1
    assert Alert.objects.get(pk=new.pk).miner_id == other.pk


def test_a_raise_with_a_bad_severity_writes_nothing(farm):
    items = [services.AlertToRaise(site_id=farm.site_a.pk, alert_type="x", severity="fatal", message="m")]
    with pytest.raises(Exception, match="Severity must be one of"):
        services.alerts_raise(items)
    assert not Alert.objects.exists()


def _statements(model, rows: int) -> int:
    """How many statements Django splits a multi-row write of ``rows`` rows into: one on PostgreSQL;
    on SQLite one per 999 parameters (Django's own limit there)."""
    fields = model._meta.concrete_fields
    return math.ceil(rows / connection.ops.bulk_batch_size(fields, [None] * rows))


def test_a_batch_of_1000_miners_costs_a_bounded_number_of_queries(farm, django_assert_max_num_queries):
    zone, model = farm.zone_a, MinerModelFactory()
    miners = Miner.objects.bulk_create(
        Miner(site=farm.site_a, zone=zone, model=model, serial=f"BULK{i:05d}", customer=farm.client_x)
        for i in range(1000)
    )
    now = timezone.now()
    LiveStatus.objects.bulk_create(
        LiveStatus(miner=m, site_id=m.site_id, customer_id=m.customer_id, last_seen=now - timedelta(seconds=10),
                   hashrate_ghs=200_000.0, temp_chip_max_c=95.0, power_w=3500.0, status="hashing", updated_at=now)
        for m in miners
    )  # fmt: skip
    rule_engine.rules_for_sites([farm.site_a.pk])  # the rules cached, as they are after the first batch
    # A dozen statements, plus the multi-row writes of alerts and of their events (one each on PostgreSQL).
    bound = 12 + _statements(Alert, 1000) + _statements(OutboxEvent, 1000)
    with django_assert_max_num_queries(bound):
        ingest(farm.site_a, miners)
    assert Alert.objects.filter(status="open", alert_type=R.CHIP_TEMP_ABOVE).count() == 1000
    assert OutboxEvent.objects.filter(event_type="alert.raised").count() == 1000
    with django_assert_max_num_queries(bound):
        ingest(farm.site_a, miners)
    assert set(Alert.objects.values_list("count", flat=True)) == {2}
    LiveStatus.objects.update(temp_chip_max_c=60.0)
    with django_assert_max_num_queries(bound):
        ingest(farm.site_a, miners)
    assert Alert.objects.filter(status="resolved").count() == 1000
    assert OutboxEvent.objects.filter(event_type="alert.resolved").count() == 1000


def test_an_unknown_miner_in_the_event_is_skipped(farm, hot_miner):
    elsewhere = MinerFactory(zone=farm.zone_b, site=farm.site_b)
    live(elsewhere, temp=99.0)
    ingest(farm.site_a, [hot_miner, elsewhere])  # a miner of site B in site A's event: not judged here
    assert [a.miner_id for a in open_alerts()] == [hot_miner.pk]
