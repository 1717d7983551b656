"""Curtailment events over time (a moving clock): acknowledgements make an event active, telemetry confirms each
miner only when power and hashrate both dropped, drift is re-curtailed or flagged, the natural end restores the
batches one interval apart, ending early restores them batch by batch through HASHING_ENABLE, the minimum duration
holds, and the settlement figures are the ones computed by hand. Running the tick twice changes nothing more."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from commands.models import Command
from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent
from intelligence import curtailment_events as events
from intelligence.models import CurtailmentEvent
from intelligence.tests import test_events_support as support
from intelligence.tests.test_events_support import ack, live

pytestmark = pytest.mark.django_db
site, clock = support.site, support.clock  # fixtures


def start(site, **kw):
    kw.setdefault("mode", "full_stop")
    kw.setdefault("restore_batch_size", 2)
    kw.setdefault("restore_interval_seconds", 60)
    kw.setdefault("max_duration_minutes", 60)
    kw.setdefault("min_duration_minutes", 20)
    return events.event_start(actor=site.actor, site_id=site.site_a.pk, **kw)


def ack_all(event, at):
    for command in event.commands.filter(command_type="CURTAIL"):
        ack(command, at)


def rows(event) -> dict:
    return {r.serial: r for r in event.miners.all()}


def snapshot(event):
    event.refresh_from_db()
    return (
        event.status, event.ended_at, event.energy_avoided_kwh, event.revenue_forgone_usd,
        sorted((r.serial, r.state, r.restored_at, r.energy_avoided_kwh, r.revenue_forgone_usd, r.drift_count)
               for r in event.miners.all()),
        Command.objects.count(), AuditEvent.objects.count(),
    )  # fmt: skip


def test_natural_end_restores_batch_by_batch_and_settles(site, clock):
    t0 = clock.now
    event = start(site)
    assert events.event_tick(t0 + timedelta(seconds=5))["moved"] == 0  # commands not acknowledged yet
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=10))
    event.refresh_from_db()
    assert event.status == "active" and {r.state for r in event.miners.all()} == {"curtailed"}

    # Telemetry: every miner stopped, except one whose power dropped while it still hashes.
    seen = t0 + timedelta(seconds=40)
    for m in [*site.s19s, site.s21_x, site.s21_y]:
        live(m, seen, power_w=20.0, ths=0.0, status="idle")
    live(site.s21_own, seen, power_w=20.0, ths=150.0)
    events.event_tick(seen + timedelta(seconds=1))
    states = {s: r.state for s, r in rows(event).items()}
    assert states[site.s21_own.serial] == "curtailed"
    assert [states[m.serial] for m in (*site.s19s, site.s21_x, site.s21_y)] == ["confirmed"] * 4
    event.refresh_from_db()
    assert event.confirmed_at is None  # not every miner yet
    live(site.s21_own, seen + timedelta(seconds=30), power_w=20.0, ths=0.2)
    events.event_tick(seen + timedelta(seconds=31))
    event.refresh_from_db()
    assert event.confirmed_at == seen + timedelta(seconds=30) and event.shed_kw == Decimal("17.000")

    # max_end_at: batch 0 (the two client S21, the most efficient, lower ids) back now, the others one interval apart.
    end = event.max_end_at
    events.event_tick(end)
    event.refresh_from_db()
    assert event.status == "restoring"
    restored = {s for s, r in rows(event).items() if r.state == "restored"}
    assert restored == {site.s21_x.serial, site.s21_y.serial}
    events.event_tick(end + timedelta(seconds=59))
    assert {s for s, r in rows(event).items() if r.state == "restored"} == restored
    events.event_tick(end + timedelta(seconds=60))
    assert {s for s, r in rows(event).items() if r.state == "restored"} == restored | {
        site.s21_own.serial,
        site.s19s[0].serial,
    }
    events.event_tick(end + timedelta(seconds=120))
    event.refresh_from_db()
    assert event.status == "ended" and event.ended_at == end + timedelta(seconds=120)

    # By hand (hashprice 0.05 USD/TH/day; acknowledged at t0, so batch b is held 60 + b minutes):
    #   batch 0, two S21: 3.5 kW × 1 h = 3.500 kWh; 200 × 0.05 × 1 / 24 = 0.4167 → 0.42 USD each
    #   batch 1, S21: 3.5 × 61/60 = 3.5583 → 3.558 kWh; 200 × 0.05 × 61/60 / 24 = 0.4236 → 0.42 USD
    #            S19: 3.25 × 61/60 = 3.3042 → 3.304 kWh; 95 × 0.05 × 61/60 / 24 = 0.2012 → 0.20 USD
    #   batch 2, S19: 3.25 × 62/60 = 3.3583 → 3.358 kWh; 95 × 0.05 × 62/60 / 24 = 0.2045 → 0.20 USD
    r = rows(event)
    assert (r[site.s21_x.serial].energy_avoided_kwh, r[site.s21_x.serial].revenue_forgone_usd) == (
        Decimal("3.500"),
        Decimal("0.42"),
    )
    assert (r[site.s21_own.serial].energy_avoided_kwh, r[site.s21_own.serial].revenue_forgone_usd) == (
        Decimal("3.558"),
        Decimal("0.42"),
    )
    assert (r[site.s19s[0].serial].energy_avoided_kwh, r[site.s19s[0].serial].revenue_forgone_usd) == (
        Decimal("3.304"),
        Decimal("0.20"),
    )
    assert (r[site.s19s[1].serial].energy_avoided_kwh, r[site.s19s[1].serial].revenue_forgone_usd) == (
        Decimal("3.358"),
        Decimal("0.20"),
    )
    assert event.energy_avoided_kwh == Decimal("17.220") and event.revenue_forgone_usd == Decimal("1.66")

    before = snapshot(event)
    events.event_tick(end + timedelta(seconds=121))
    events.event_tick(end + timedelta(seconds=121))
    assert snapshot(event) == before


def test_the_tick_twice_changes_nothing_more(site, clock):
    t0 = clock.now
    event = start(site)
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=10))
    once = snapshot(event)
    events.event_tick(t0 + timedelta(seconds=10))
    assert snapshot(event) == once


def test_minimum_duration_holds_unless_emergency_or_an_owner_forces(site, clock):
    t0 = clock.now
    event = start(site)
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=10))
    clock.advance(minutes=5)
    with pytest.raises(DomainError) as exc:
        events.event_end(actor=site.actor, event=event, reason="done")
    assert exc.value.status == 409 and exc.value.code == "min_duration"
    with pytest.raises(DomainError) as exc:
        events.event_end(actor=site.actor, event=event, force=True)
    assert exc.value.status == 403 and exc.value.code == "force_owner_only"
    event.refresh_from_db()
    assert event.status == "active" and event.end_requested_at is None
    events.event_end(actor=site.users["owner"], event=event, force=True)
    event.refresh_from_db()
    assert event.status == "restoring" and event.end_requested_at == clock.now


def test_an_emergency_ends_before_its_minimum(site, clock):
    t0 = clock.now
    event = start(site, priority="emergency")
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=10))
    clock.advance(minutes=1)
    assert events.event_end(actor=site.actor, event=event).status == "restoring"


def test_ending_early_restores_batch_by_batch_through_hashing_enable(site, clock):
    t0 = clock.now
    event = start(site)
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=10))
    t1 = clock.advance(minutes=30)
    event = events.event_end(actor=site.actor, event=event, reason="price fell")
    assert event.status == "restoring"
    again = events.event_end(actor=site.actor, event=event)  # idempotent
    assert again.end_requested_at == t1

    events.event_tick(t1)
    enables = event.commands.filter(command_type="HASHING_ENABLE")
    assert [c.dedupe_key for c in enables] == [events.restore_key(event.pk, 0, "enable")]
    assert {t.serial for t in enables[0].targets.all()} == {site.s21_x.serial, site.s21_y.serial}
    events.event_tick(t1 + timedelta(seconds=30))
    assert event.commands.filter(command_type="HASHING_ENABLE").count() == 1  # batch 1 waits its interval
    ack(enables[0], t1 + timedelta(seconds=20))
    events.event_tick(t1 + timedelta(seconds=30))
    r = rows(event)
    assert r[site.s21_x.serial].state == "restored"
    assert r[site.s21_x.serial].restored_at == t1 + timedelta(seconds=20)
    # Held from t0 to t1 + 20 s: 30 min 20 s = 1820 s; 3.5 kW × 1820/3600 h = 1.7694 → 1.769 kWh;
    # 200 TH/s × 0.05 × 1820/3600 / 24 = 0.2106 → 0.21 USD.
    assert r[site.s21_x.serial].energy_avoided_kwh == Decimal("1.769")
    assert r[site.s21_x.serial].revenue_forgone_usd == Decimal("0.21")

    for b in (1, 2):
        clock.now = t1 + timedelta(seconds=60 * b)
        events.event_tick(clock.now)
        command = event.commands.get(dedupe_key=events.restore_key(event.pk, b, "enable"))
        ack(command, clock.now + timedelta(seconds=5))
        events.event_tick(clock.now + timedelta(seconds=6))
    event.refresh_from_db()
    assert event.status == "ended" and event.ended_at == t1 + timedelta(seconds=125)
    assert event.commands.filter(command_type="HASHING_ENABLE").count() == 3


def test_ending_before_the_start_cancels(site, clock):
    event = start(site, starts_at=(clock.now + timedelta(hours=1)).isoformat())
    event = events.event_end(actor=site.actor, event=event, reason="not needed")
    assert event.status == "cancelled"
    assert set(event.commands.values_list("status", flat=True)) == {"CANCELLED"}
    assert set(event.miners.values_list("state", flat=True)) == {"failed"}


def confirmed(site, clock, **kw):
    t0 = clock.now
    event = start(site, **kw)
    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=1))
    for m in [*site.s19s, site.s21_own, site.s21_x, site.s21_y]:
        live(m, t0 + timedelta(seconds=30), power_w=10.0, ths=0.0, status="idle")
    events.event_tick(t0 + timedelta(seconds=31))
    assert set(event.miners.values_list("state", flat=True)) == {"confirmed"}
    return event, t0


def test_drift_is_curtailed_again(site, clock):
    event, t0 = confirmed(site, clock)
    drift_at = t0 + timedelta(minutes=10)
    live(site.s19s[0], drift_at, power_w=3200.0, ths=93.0)
    events.event_tick(drift_at + timedelta(seconds=1))
    r = rows(event)[site.s19s[0].serial]
    assert r.state == "drifted" and r.drift_count == 1
    # Held from t0 until drift was seen: 10 min; 3.25 kW × 1/6 h = 0.5417 → 0.542 kWh; 95 × 0.05 / 6 / 24 → 0.03
    assert r.energy_avoided_kwh == Decimal("0.542") and r.revenue_forgone_usd == Decimal("0.03")
    again = event.commands.get(dedupe_key=events.recurtail_key(event.pk, site.s19s[0].pk, 1))
    assert again.command_type == "CURTAIL" and again.params["end"] == events.batch_end(
        event, r.batch
    ).isoformat().replace("+00:00", "Z")
    assert [t.miner_id for t in again.targets.all()] == [site.s19s[0].pk]
    events.event_tick(drift_at + timedelta(seconds=2))
    assert event.commands.filter(command_type="CURTAIL").count() == 4  # three batch commands + the re-curtailment
    ack(again, drift_at + timedelta(seconds=5))
    events.event_tick(drift_at + timedelta(seconds=6))
    r = rows(event)[site.s19s[0].serial]
    assert r.state == "curtailed" and r.curtailed_at == drift_at + timedelta(seconds=5)


def test_noise_between_the_thresholds_is_no_drift(site, clock):
    event, t0 = confirmed(site, clock)
    live(site.s19s[0], t0 + timedelta(minutes=5), power_w=1200.0, ths=0.0)  # power up, hashrate still nil
    events.event_tick(t0 + timedelta(minutes=5, seconds=1))
    assert rows(event)[site.s19s[0].serial].state == "confirmed"


def test_drift_is_flagged_with_an_alert(site, clock):
    from telemetry.models import Alert

    event, t0 = confirmed(site, clock, drift_action="flag")
    live(site.s19s[0], t0 + timedelta(minutes=10), power_w=3200.0, ths=93.0)
    events.event_tick(t0 + timedelta(minutes=10, seconds=1))
    r = rows(event)[site.s19s[0].serial]
    assert r.state == "drifted" and r.drift_count == 1
    assert not event.commands.filter(dedupe_key__contains=":m").exists()
    alert = Alert.objects.get(alert_type=events.DRIFT_ALERT, miner=site.s19s[0])
    assert alert.evidence["msg"]["id"] == events.DRIFT_ALERT and alert.evidence["event_id"] == event.pk
    assert site.s19s[0].serial in alert.message and f"#{event.pk}" in alert.message
    # At the end the flagged miner is done with, nothing more settled on it.
    events.event_tick(event.max_end_at + timedelta(minutes=5))
    event.refresh_from_db()
    assert event.status == "ended"
    assert rows(event)[site.s19s[0].serial].energy_avoided_kwh == Decimal("0.542")


def test_failed_targets_and_refused_commands_fail_their_miners(site, clock):
    t0 = clock.now
    event = start(site, restore_batch_size=5)
    (command,) = event.commands.all()
    ack(command, t0, failed_serials=[site.s19s[0].serial])
    events.event_tick(t0 + timedelta(seconds=1))
    event.refresh_from_db()
    assert event.status == "active" and rows(event)[site.s19s[0].serial].state == "failed"

    other = start(site, restore_batch_size=5, mode="kw_reduction", target_kw=1)
    Command.objects.filter(pk__in=other.commands.values("pk")).update(status="DENIED")
    events.event_tick(t0 + timedelta(seconds=2))
    other.refresh_from_db()
    assert other.status == "failed" and set(other.miners.values_list("state", flat=True)) == {"failed"}
    assert CurtailmentEvent.objects.filter(status="failed").count() == 1


def _confirmation_queries(event, miners, t0) -> int:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    ack_all(event, t0)
    events.event_tick(t0 + timedelta(seconds=1))
    for m in miners:
        live(m, t0 + timedelta(seconds=30), power_w=10.0, ths=0.0, status="idle")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = CurtailmentEvent.objects.select_for_update().get(pk=event.pk)
        events._tick_event(locked, t0 + timedelta(seconds=31))
    assert set(event.miners.values_list("state", flat=True)) == {"confirmed"}
    return len(queries)


def test_the_tick_reads_and_writes_in_bulk(site, clock):
    """No N+1: confirming 15 miners costs the same queries as confirming 5."""
    from hashinsight.tests.factories import MinerFactory

    t0 = clock.now
    small = start(site, restore_batch_size=50)
    small_miners = [*site.s19s, site.s21_own, site.s21_x, site.s21_y]
    big_miners = [m for (slug, _), m in site.miners.items() if slug == "site-b"]
    big_miners += [MinerFactory(zone=site.zone_b, site=site.site_b) for _ in range(12)]
    big = events.event_start(actor=site.users["owner"], site_id=site.site_b.pk, mode="full_stop",
                             restore_batch_size=50)  # fmt: skip
    assert big.miners.count() == 15
    assert _confirmation_queries(small, small_miners, t0) == _confirmation_queries(big, big_miners, t0)


def test_the_beat_job_records_its_run(site, clock):
    from hashinsight.events.models import JobRun
    from intelligence.events_tasks import curtailment_event_tick

    event = start(site)
    ack_all(event, clock.now)
    curtailment_event_tick.delay()
    run = JobRun.objects.get(job_type="curtailment_event_tick")
    assert run.status == "success" and run.result["events"] == 1
    event.refresh_from_db()
    assert event.status == "active"
