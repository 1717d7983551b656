"""Rollups against hand-computed windows. The same tests run on SQLite and, with DATABASE_URL, on
PostgreSQL: one definition of each figure, identical results on both."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hashinsight.events.models import JobRun, OutboxEvent
from hashinsight.tests.factories import CustomerFactory, MinerFactory, SiteFactory, ZoneFactory
from miners.models import Miner
from telemetry import rollups
from telemetry.models import Daily, History5m, RawSample, RollupCursor, SiteDaily, SiteHistory5m

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a window start
MIN = timedelta(minutes=1)
approx = pytest.approx


@pytest.fixture
def fleet():
    site_a, site_b = SiteFactory(slug="roll-a"), SiteFactory(slug="roll-b")
    zone_a, zone_b = ZoneFactory(site=site_a), ZoneFactory(site=site_b)
    client = CustomerFactory(slug="roll-client")
    miners = {
        name: MinerFactory(site=site_a, zone=zone_a, customer=client if name == "a" else None)
        for name in ("a", "b", "c", "d")
    }
    miners["e"] = MinerFactory(site=site_b, zone=zone_b)
    Miner.objects.update(created_at=T0 - timedelta(days=30))
    return {"site_a": site_a, "site_b": site_b, "client": client, **miners}


def sample(miner, ts, *, status="hashing", hashrate=100.0, chip=70.0, inlet=25.0, outlet=40.0, power=3000.0,
           fans=(6000, 6200), acc=None, rej=None):  # fmt: skip
    return RawSample(
        miner_id=miner.pk,
        ts=ts,
        site_id=miner.site_id,
        device_id=None,
        hashrate_ths=hashrate,
        temp_chip_max_c=chip,
        temp_inlet_c=inlet,
        temp_outlet_c=outlet,
        fan_rpm=list(fans),
        power_w=power,
        status=status,
        accepted_shares=acc,
        rejected_shares=rej,
        errors=[],
    )


def seed_window(f):
    """The window [T0, T0+5 min) of the module docstring's hand computation, with samples around it."""
    a, b, c, d, e = f["a"], f["b"], f["c"], f["d"], f["e"]
    rows = [
        # a: steady, one sample in the window before (its counters are the base of the first delta)
        sample(a, T0 - MIN, acc=1000, rej=5),
        sample(a, T0, hashrate=100, chip=70, inlet=25, outlet=40, power=3000, acc=1010, rej=5),
        sample(a, T0 + 1 * MIN, hashrate=102, chip=72, inlet=25, outlet=41, power=3010, acc=1025, rej=6),
        sample(a, T0 + 2 * MIN, hashrate=98, chip=71, inlet=26, outlet=42, power=2990, acc=1030, rej=6),
        sample(a, T0 + 3 * MIN, hashrate=100, chip=69, inlet=26, outlet=43, power=3000, acc=1040, rej=7),
        sample(
            a,
            T0 + 4 * MIN,
            hashrate=105,
            chip=73,
            inlet=28,
            outlet=44,
            power=3050,
            acc=1050,
            rej=7,
            fans=(5800, 6000, 6100, 6100),
        ),
        sample(a, T0 + 5 * MIN, acc=1060, rej=7),  # next window: not counted
        # b: reboots — two offline samples without counters, then counters start again from zero
        sample(b, T0 - MIN, acc=5000, rej=20),
        sample(b, T0, hashrate=100, chip=70, inlet=25, outlet=40, power=3000, fans=(6000, 6000), acc=5010, rej=20),
        sample(
            b, T0 + 1 * MIN, status="offline", hashrate=0, chip=None, inlet=None, outlet=None, power=40, fans=(0, 0)
        ),
        sample(
            b, T0 + 2 * MIN, status="offline", hashrate=0, chip=None, inlet=None, outlet=None, power=40, fans=(0, 0)
        ),
        sample(
            b, T0 + 3 * MIN, hashrate=50, chip=60, inlet=27, outlet=35, power=3000, fans=(5000, 5000), acc=12, rej=1
        ),
        sample(
            b, T0 + 4 * MIN, hashrate=95, chip=65, inlet=29, outlet=41, power=3100, fans=(5500, 5500), acc=30, rej=1
        ),
        # c: offline all window
        *[
            sample(c, T0 + n * MIN, status="offline", hashrate=0, chip=None, inlet=None, outlet=None, power=0, fans=())
            for n in range(5)
        ],
        # d: missing samples, no sample before the window (its first counters are a base, not a delta)
        sample(d, T0 + 2 * MIN, hashrate=90, power=2900, acc=200, rej=0),
        sample(d, T0 + 4 * MIN, hashrate=110, power=3100, acc=230, rej=2),
        # e: another site
        sample(e, T0 + 3 * MIN, hashrate=80, chip=80, power=2500, acc=7, rej=0),
    ]
    RawSample.objects.bulk_create(rows)


def h5m(miner, bucket=T0):
    return History5m.objects.get(miner_id=miner.pk, bucket=bucket)


def test_5m_window_against_hand_computed_figures(fleet):
    seed_window(fleet)
    site_ids = rollups.rollup_5m(T0, T0 + 5 * MIN)
    assert site_ids == sorted([fleet["site_a"].pk, fleet["site_b"].pk])

    a = h5m(fleet["a"])
    assert (a.site_id, a.sample_count, a.hashing_count, a.uptime_fraction) == (fleet["site_a"].pk, 5, 5, 1.0)
    assert (a.avg_hashrate_ths, a.min_hashrate_ths, a.max_hashrate_ths) == (approx(101), 98, 105)
    assert (a.avg_temp_chip_max_c, a.min_temp_chip_max_c, a.max_temp_chip_max_c) == (approx(71), 69, 73)
    assert (a.avg_temp_inlet_c, a.max_temp_inlet_c, a.avg_temp_outlet_c, a.max_temp_outlet_c) == (
        approx(26),
        28,
        approx(42),
        44,
    )
    assert (a.avg_power_w, a.min_power_w, a.max_power_w) == (approx(3010), 2990, 3050)
    assert a.avg_fan_rpm == approx((4 * 12200 + 24000) / 12)  # mean over every fan of every sample
    assert a.min_fan_rpm == 5800
    assert (a.accepted_shares, a.rejected_shares, a.restarts) == (50, 2, 0)  # 1050 - 1000, 7 - 5

    b = h5m(fleet["b"])
    assert (b.sample_count, b.hashing_count, b.uptime_fraction) == (5, 3, approx(0.6))
    assert (b.avg_hashrate_ths, b.min_hashrate_ths, b.max_hashrate_ths) == (approx(49), 0, 100)
    assert (b.avg_temp_chip_max_c, b.min_temp_chip_max_c, b.max_temp_chip_max_c) == (approx(65), 60, 70)
    assert (b.avg_temp_inlet_c, b.max_temp_inlet_c) == (approx(27), 29)
    assert (b.avg_temp_outlet_c, b.max_temp_outlet_c) == (approx(116 / 3), 41)
    assert (b.avg_power_w, b.min_power_w, b.max_power_w) == (approx(1836), 40, 3100)
    assert (b.avg_fan_rpm, b.min_fan_rpm) == (approx(3300), 0)
    # 5010 - 5000, then a restart: 12 (since boot) + 18; rejected: 0, then 1 since boot
    assert (b.accepted_shares, b.rejected_shares, b.restarts) == (40, 1, 1)

    c = h5m(fleet["c"])
    assert (c.sample_count, c.hashing_count, c.uptime_fraction, c.avg_hashrate_ths) == (5, 0, 0.0, 0)
    assert (c.avg_temp_chip_max_c, c.avg_fan_rpm, c.min_fan_rpm) == (None, None, None)
    assert (c.accepted_shares, c.rejected_shares, c.restarts) == (0, 0, 0)

    d = h5m(fleet["d"])
    assert (d.sample_count, d.hashing_count, d.avg_hashrate_ths) == (2, 2, approx(100))
    assert (d.accepted_shares, d.rejected_shares) == (30, 2)

    assert set(History5m.objects.values_list("bucket", flat=True)) == {T0}

    site = SiteHistory5m.objects.get(site_id=fleet["site_a"].pk, bucket=T0)
    assert (site.miners_reporting, site.miners_hashing) == (4, 3)
    assert site.hashrate_ths == approx(101 + 49 + 0 + 100)
    assert site.power_w == approx(3010 + 1836 + 0 + 3000)
    assert site.avg_temp_chip_max_c == approx((71 + 65 + 70) / 3)
    assert site.max_temp_chip_max_c == 73
    assert site.uptime_fraction == approx((5 + 3 + 0 + 2) / 17)
    other = SiteHistory5m.objects.get(site_id=fleet["site_b"].pk, bucket=T0)
    assert (other.miners_reporting, other.hashrate_ths, other.power_w) == (1, 80, 2500)


def _rows(model, **filters):
    key = "miner_id" if model in (History5m, Daily) else "site_id"
    time = "day" if model in (Daily, SiteDaily) else "bucket"
    return list(model.objects.filter(**filters).order_by(key, time).values())


def test_re_running_a_window_gives_identical_rows(fleet):
    seed_window(fleet)
    rollups.rollup_5m(T0, T0 + 5 * MIN)
    first = (_rows(History5m), _rows(SiteHistory5m))
    rollups.rollup_5m(T0, T0 + 5 * MIN)
    rollups.rollup_5m(T0 - 5 * MIN, T0 + 10 * MIN)  # a wider re-run covers the same window again
    assert (_rows(History5m, bucket=T0), _rows(SiteHistory5m, bucket=T0)) == first


def test_a_late_sample_is_counted_when_the_window_is_rolled_again(fleet):
    seed_window(fleet)
    rollups.rollup_5m(T0, T0 + 5 * MIN)
    RawSample.objects.bulk_create([sample(fleet["d"], T0 + 3 * MIN, hashrate=100, acc=215, rej=1)])
    rollups.rollup_5m(T0, T0 + 5 * MIN)
    d = h5m(fleet["d"])
    assert (d.sample_count, d.avg_hashrate_ths, d.accepted_shares, d.rejected_shares) == (3, approx(100), 30, 2)


def test_windows_add_up_to_the_counters_growth_and_batching_does_not_matter(fleet):
    a = fleet["a"]
    counters = [100 + 7 * n for n in range(20)]
    RawSample.objects.bulk_create([sample(a, T0 + n * MIN, acc=acc, rej=n // 4) for n, acc in enumerate(counters)])
    rollups.rollup_5m(T0, T0 + 20 * MIN)
    together = _rows(History5m)
    assert sum(row["accepted_shares"] for row in together) == counters[-1] - counters[0]
    assert sum(row["rejected_shares"] for row in together) == 19 // 4
    History5m.objects.all().delete()
    for n in range(4):
        rollups.rollup_5m(T0 + 5 * n * MIN, T0 + 5 * (n + 1) * MIN)
    assert _rows(History5m) == together


def test_windows_must_be_whole(fleet):
    with pytest.raises(ValueError):
        rollups.rollup_5m(T0 + MIN, T0 + 5 * MIN)
    with pytest.raises(ValueError):
        rollups.rollup_5m(T0, T0)


# ---------------------------------------------------------------------------------------------------
# The job's catch-up logic


def test_catch_up_after_downtime_processes_every_window_bounded_per_run(fleet, settings):
    settings.TELEMETRY_ROLLUP_MAX_WINDOWS = 4
    settings.TELEMETRY_ROLLUP_GRACE_S = 120
    settings.TELEMETRY_ROLLUP_REROLL_WINDOWS = 1
    a = fleet["a"]
    RawSample.objects.bulk_create([sample(a, T0 + n * MIN, acc=10 * n) for n in range(60)])  # an hour
    RollupCursor.objects.create(layer=rollups.CURSOR_5M, done_until=T0)
    now = T0 + 60 * MIN + 2 * MIN  # the job was down for an hour; 12 windows are complete

    runs = []
    for _ in range(4):
        runs.append(rollups.rollup_pending_5m(now=now))
    assert [r["windows"] for r in runs[:3]] == [4, 4, 4]
    assert [r["behind_windows"] for r in runs[:3]] == [8, 4, 0]
    assert runs[3]["window_start"] == (T0 + 55 * MIN).isoformat()  # caught up: re-rolls the last window
    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == T0 + 60 * MIN
    assert History5m.objects.filter(miner_id=a.pk).count() == 12
    assert sum(History5m.objects.values_list("sample_count", flat=True)) == 60
    assert sum(History5m.objects.values_list("accepted_shares", flat=True)) == 590
    payloads = [e.payload for e in OutboxEvent.objects.filter(event_type="telemetry.rolled_up")]
    assert len(payloads) == 4
    assert all(p["site_ids"] == [fleet["site_a"].pk] and p["layer"] == "history_5m" for p in payloads)
    assert sorted(p["window_start"][11:16] for p in payloads) == ["10:00", "10:20", "10:40", "10:55"]


def test_grace_keeps_a_window_open_until_late_samples_had_their_chance(fleet, settings):
    settings.TELEMETRY_ROLLUP_GRACE_S = 120
    settings.TELEMETRY_ROLLUP_REROLL_WINDOWS = 1
    RollupCursor.objects.create(layer=rollups.CURSOR_5M, done_until=T0)
    a = fleet["a"]
    RawSample.objects.bulk_create([sample(a, T0 + n * MIN) for n in range(5)])
    # within the grace: only the window before the cursor is rolled again
    assert rollups.rollup_pending_5m(now=T0 + 6 * MIN)["window_start"] == (T0 - 5 * MIN).isoformat()
    assert not History5m.objects.exists()
    assert rollups.rollup_pending_5m(now=T0 + 7 * MIN)["windows"] == 1
    RawSample.objects.bulk_create([sample(fleet["b"], T0 + 4 * MIN)])  # late
    result = rollups.rollup_pending_5m(now=T0 + 9 * MIN)  # no new window: the last one is rolled again
    assert result["window_start"] == T0.isoformat()
    assert History5m.objects.filter(bucket=T0).count() == 2
    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == T0 + 5 * MIN


def test_first_run_starts_at_the_oldest_raw_sample_kept(fleet, settings):
    settings.TELEMETRY_ROLLUP_MAX_WINDOWS = 100
    RawSample.objects.bulk_create([sample(fleet["a"], T0 + 12 * MIN)])
    result = rollups.rollup_pending_5m(now=T0 + 30 * MIN)
    assert result["window_start"] == (T0 + 10 * MIN).isoformat()
    assert History5m.objects.get().bucket == T0 + 10 * MIN


def test_the_job_records_its_run(fleet):
    from telemetry.tasks import rollup_5m

    seed_window(fleet)
    rollup_5m.apply(kwargs={"trigger": "manual"}).get()
    run = JobRun.objects.get(job_type="telemetry_rollup_5m")
    assert run.status == "success" and run.trigger == "manual"


# ---------------------------------------------------------------------------------------------------
# Daily

DAY = date(2026, 11, 20)
D0 = datetime(2026, 11, 20, tzinfo=UTC)


def h5m_row(miner, bucket, **values):
    defaults = {
        "site_id": miner.site_id,
        "sample_count": 5,
        "hashing_count": 5,
        "uptime_fraction": 1.0,
        "avg_hashrate_ths": 100.0,
        "avg_power_w": 3000.0,
        "max_temp_chip_max_c": 70.0,
        "accepted_shares": 50,
        "rejected_shares": 1,
        "restarts": 0,
    }
    defaults.update(values)
    return History5m(miner_id=miner.pk, bucket=bucket, **defaults)


def seed_day(f):
    a, b = f["a"], f["b"]
    History5m.objects.bulk_create(
        [
            h5m_row(a, D0 + timedelta(hours=1)),
            h5m_row(
                a,
                D0 + timedelta(hours=2),
                hashing_count=4,
                uptime_fraction=0.8,
                avg_hashrate_ths=90,
                max_temp_chip_max_c=80,
                restarts=1,
                accepted_shares=40,
                rejected_shares=0,
            ),
            h5m_row(
                a,
                D0 + timedelta(hours=3),
                sample_count=2,
                hashing_count=0,
                uptime_fraction=0.0,
                avg_hashrate_ths=0,
                avg_power_w=100,
                max_temp_chip_max_c=60,
                accepted_shares=0,
            ),
            h5m_row(b, D0 + timedelta(hours=13), avg_hashrate_ths=50, avg_power_w=1500),
            h5m_row(a, D0 - 5 * MIN, avg_hashrate_ths=999),  # the day before
            h5m_row(a, D0 + timedelta(days=1), avg_hashrate_ths=999),  # the day after
        ]
    )
    SiteHistory5m.objects.bulk_create(
        [
            SiteHistory5m(
                site_id=f["site_a"].pk,
                bucket=D0 + timedelta(hours=h),
                miners_reporting=1,
                miners_hashing=1,
                hashrate_ths=ths,
                power_w=1,
                uptime_fraction=1,
            )
            for h, ths in ((1, 100), (2, 90), (3, 0), (13, 50))
        ]
    )


def test_daily_against_hand_computed_figures(fleet):
    seed_day(fleet)
    Miner.objects.filter(pk=fleet["b"].pk).update(created_at=D0 + timedelta(hours=12, minutes=2))
    assert rollups.rollup_daily(DAY) == [fleet["site_a"].pk]

    a = Daily.objects.get(miner_id=fleet["a"].pk, day=DAY)
    assert (a.site_id, a.customer_id, a.sample_count, a.buckets_reported) == (
        fleet["site_a"].pk,
        fleet["client"].pk,
        12,
        3,
    )
    assert a.avg_hashrate_ths == approx((100 * 5 + 90 * 5 + 0 * 2) / 12)  # weighted by samples
    assert a.energy_kwh == approx((3000 + 3000 + 100) * 5 / 60 / 1000)  # reported windows only
    assert a.uptime_pct == approx(100 * 1.8 / 288)  # unreported windows of the day count as down
    assert (a.max_temp_chip_c, a.restarts, a.accepted_shares, a.rejected_shares) == (80, 1, 90, 2)

    b = Daily.objects.get(miner_id=fleet["b"].pk, day=DAY)
    assert b.uptime_pct == approx(100 * 1.0 / 144)  # added at 12:02: 144 windows expected, from 12:00
    assert b.customer_id is None

    site = SiteDaily.objects.get(site_id=fleet["site_a"].pk, day=DAY)
    assert site.miners_reporting == 2
    assert site.avg_hashrate_ths == approx((100 + 90 + 0 + 50) / 288)  # a window with no data is 0 TH/s
    assert site.energy_kwh == approx(a.energy_kwh + b.energy_kwh)
    assert site.uptime_pct == approx((a.uptime_pct + b.uptime_pct) / 2)
    assert (site.max_temp_chip_c, site.restarts) == (80, 1)


def test_daily_is_idempotent_and_follows_its_5m_rows(fleet):
    seed_day(fleet)
    rollups.rollup_daily(DAY)
    first = (_rows(Daily), _rows(SiteDaily))
    rollups.rollup_daily(DAY)
    assert (_rows(Daily), _rows(SiteDaily)) == first
    History5m.objects.filter(miner_id=fleet["a"].pk, bucket=D0 + timedelta(hours=3)).delete()
    rollups.rollup_daily(DAY)
    assert Daily.objects.get(miner_id=fleet["a"].pk, day=DAY).buckets_reported == 2


def test_daily_from_5m_from_raw(fleet):
    """The whole chain: raw → 5-minute → daily, the day's samples all accounted for."""
    a = fleet["a"]
    RawSample.objects.bulk_create([sample(a, D0 + n * MIN, acc=3 * n) for n in range(0, 30)])
    RawSample.objects.bulk_create(
        [sample(a, D0 + timedelta(hours=5) + n * MIN, status="idle", hashrate=0, acc=90 + n) for n in range(10)]
    )
    rollups.rollup_5m(D0, D0 + timedelta(hours=6))
    rollups.rollup_daily(DAY)
    day = Daily.objects.get(miner_id=a.pk)
    assert (day.sample_count, day.buckets_reported) == (40, 8)
    assert day.uptime_pct == approx(100 * 6 / 288)
    assert day.avg_hashrate_ths == approx(100 * 30 / 40)
    # the second stretch starts 4.5 h after the first ended: its first counters are a base, not a delta
    assert day.accepted_shares == 87 + 9


def test_daily_job_rolls_each_complete_day_then_once_more_after_the_final_delay(fleet, settings):
    settings.TELEMETRY_DAILY_FINAL_DELAY_S = 3 * 3600
    a = fleet["a"]
    History5m.objects.bulk_create([h5m_row(a, D0 + timedelta(days=n, hours=6)) for n in range(3)])
    nov = [date(2026, 11, 20 + n).isoformat() for n in range(3)]
    # first run ever, 1 h after the third day ended: three days to roll (the first two are final at once)
    assert rollups.rollup_pending_daily(now=D0 + timedelta(days=3, hours=1)) == {"days": nov, "final_days": []}
    assert RollupCursor.objects.get(layer=rollups.CURSOR_DAILY_FINAL).done_until == D0 + timedelta(days=2)
    assert Daily.objects.count() == 3
    cursor = RollupCursor.objects.get(layer=rollups.CURSOR_DAILY).done_until
    assert cursor == D0 + timedelta(days=3)
    # same hour again: nothing new
    assert rollups.rollup_pending_daily(now=D0 + timedelta(days=3, hours=1, minutes=30)) == {
        "days": [], "final_days": [],
    }  # fmt: skip
    # a late 5-minute row for the last day, then the final roll picks it up once
    History5m.objects.bulk_create([h5m_row(a, D0 + timedelta(days=2, hours=7))])
    assert rollups.rollup_pending_daily(now=D0 + timedelta(days=3, hours=3)) == {"days": [], "final_days": [nov[2]]}
    assert Daily.objects.get(day=date(2026, 11, 22)).buckets_reported == 2
    assert rollups.rollup_pending_daily(now=D0 + timedelta(days=3, hours=4)) == {"days": [], "final_days": []}


def test_a_spool_replayed_after_an_outage_is_rolled_up_again_and_its_day_too(fleet, settings):
    settings.TELEMETRY_ROLLUP_MAX_WINDOWS = 100
    a = fleet["a"]
    RawSample.objects.bulk_create([sample(a, D0 + timedelta(hours=23, minutes=50) + n * MIN) for n in range(10)])
    rollups.rollup_pending_5m(now=D0 + timedelta(days=1, hours=1))
    rollups.rollup_pending_daily(now=D0 + timedelta(days=1, hours=1))
    assert Daily.objects.get(miner_id=a.pk, day=DAY).sample_count == 10
    done = RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until

    # a collector replays samples from 23:40 (late by more than the re-rolled window)
    RawSample.objects.bulk_create(
        [sample(fleet["b"], D0 + timedelta(hours=23, minutes=40) + n * MIN) for n in range(3)]
    )
    now = D0 + timedelta(days=1, hours=1)
    assert rollups.note_late_samples(D0 + timedelta(hours=23, minutes=40, seconds=30), now=now)
    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == D0 + timedelta(hours=23, minutes=40)
    # later than the cursor now, or recent (still rolled again by the job): no change
    assert not rollups.note_late_samples(D0 + timedelta(hours=23, minutes=50), now=now)
    assert not rollups.note_late_samples(now - 5 * MIN, now=now)
    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == D0 + timedelta(hours=23, minutes=40)

    rollups.rollup_pending_5m(now=D0 + timedelta(days=1, hours=1, minutes=1))
    assert History5m.objects.get(miner_id=fleet["b"].pk).sample_count == 3
    assert RollupCursor.objects.get(layer=rollups.CURSOR_5M).done_until == done
    assert RollupCursor.objects.get(layer=rollups.CURSOR_DAILY).done_until == D0  # the day is to roll again
    assert rollups.rollup_pending_daily(now=D0 + timedelta(days=1, hours=2))["days"] == [DAY.isoformat()]
    assert Daily.objects.get(miner_id=fleet["b"].pk, day=DAY).sample_count == 3
