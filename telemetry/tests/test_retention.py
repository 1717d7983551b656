"""Retention by DELETE: exactly the rows past each layer's retention go (SQLite; on PostgreSQL the rows
of a DEFAULT partition — these dates have no partition of their own, so the same rows go on both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hashinsight.events.models import JobRun
from hashinsight.tests.factories import MinerFactory
from telemetry import partitions
from telemetry.models import Daily, History5m, RawSample, SiteDaily, SiteHistory5m

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # far from today: no partition holds these rows
TODAY = NOW.date()


@pytest.fixture
def miner():
    return MinerFactory()


def raw(miner, ts):
    return RawSample(miner_id=miner.pk, ts=ts, site_id=miner.site_id, status="hashing", fan_rpm=[], errors=[])


def h5m(miner, bucket):
    return History5m(
        miner_id=miner.pk, bucket=bucket, site_id=miner.site_id, sample_count=1, hashing_count=1, uptime_fraction=1
    )


def daily(miner, day):
    return Daily(
        miner_id=miner.pk, day=day, site_id=miner.site_id, sample_count=1, buckets_reported=1, energy_kwh=1,
        uptime_pct=100,
    )  # fmt: skip


def site_daily(miner, day):
    return SiteDaily(
        site_id=miner.site_id, day=day, miners_reporting=1, avg_hashrate_ths=1, energy_kwh=1, uptime_pct=100
    )


def site_h5m(miner, bucket):
    return SiteHistory5m(
        site_id=miner.site_id, bucket=bucket, miners_reporting=1, miners_hashing=1, hashrate_ths=1, power_w=1,
        uptime_fraction=1,
    )  # fmt: skip


@pytest.fixture
def layers(miner):
    hour, day = timedelta(hours=1), timedelta(days=1)
    RawSample.objects.bulk_create(
        [raw(miner, NOW - 24 * hour - timedelta(seconds=1)), raw(miner, NOW - 24 * hour), raw(miner, NOW - hour)]
    )
    History5m.objects.bulk_create([h5m(miner, NOW - 90 * day - timedelta(minutes=5)), h5m(miner, NOW - 90 * day)])
    SiteHistory5m.objects.bulk_create(
        [site_h5m(miner, NOW - 90 * day - timedelta(minutes=5)), site_h5m(miner, NOW - 90 * day)]
    )
    days = [TODAY - timedelta(days=n) for n in (500, 401, 400, 366, 365, 10)]
    Daily.objects.bulk_create([daily(miner, d) for d in days])
    SiteDaily.objects.bulk_create([site_daily(miner, d) for d in days])
    return days


def test_raw_and_5m_rows_past_retention_are_deleted_and_nothing_else(layers, settings):
    settings.TELEMETRY_RAW_RETENTION_HOURS = 24
    settings.TELEMETRY_HISTORY_RETENTION_DAYS = 90
    settings.TELEMETRY_DAILY_RETENTION_DAYS = 0
    deleted = partitions.delete_expired(now=NOW)
    assert sorted(RawSample.objects.values_list("ts", flat=True)) == [
        NOW - timedelta(hours=24),
        NOW - timedelta(hours=1),
    ]
    assert list(History5m.objects.values_list("bucket", flat=True)) == [NOW - timedelta(days=90)]
    assert list(SiteHistory5m.objects.values_list("bucket", flat=True)) == [NOW - timedelta(days=90)]
    assert sum(deleted.values()) == 3
    # daily layers are kept for good by default
    assert Daily.objects.count() == SiteDaily.objects.count() == len(layers)


def test_daily_layers_go_after_their_setting_but_never_before_365_days(layers, settings):
    settings.TELEMETRY_DAILY_RETENTION_DAYS = 400
    partitions.delete_expired(now=NOW)
    kept = [TODAY - timedelta(days=n) for n in (400, 366, 365, 10)]
    assert sorted(Daily.objects.values_list("day", flat=True)) == sorted(kept)
    assert sorted(SiteDaily.objects.values_list("day", flat=True)) == sorted(kept)

    settings.TELEMETRY_DAILY_RETENTION_DAYS = 30  # too short for reports and billing: 365 it is
    partitions.delete_expired(now=NOW)
    assert sorted(Daily.objects.values_list("day", flat=True)) == sorted(kept[2:])


def test_retention_settings_follow_the_configuration(layers, settings):
    settings.TELEMETRY_RAW_RETENTION_HOURS = 2
    settings.TELEMETRY_HISTORY_RETENTION_DAYS = 365
    partitions.delete_expired(now=NOW)
    assert list(RawSample.objects.values_list("ts", flat=True)) == [NOW - timedelta(hours=1)]
    assert History5m.objects.count() == 2


def test_the_retention_job_records_its_run(layers):
    from telemetry.tasks import retention

    result = retention.apply(kwargs={"trigger": "manual"}).get()
    run = JobRun.objects.get(job_type="telemetry_retention")
    assert run.status == "success" and run.trigger == "manual"
    assert result["rows_deleted"]["telemetry_site_history_5m"] == 2  # both are older than 90 days today
    assert not RawSample.objects.exists()  # the job runs at the real time: every seeded row is past 24 h
