"""Ingest's optional settings keys (pool_url, fan_pct, power_mode): validated per sample like every other
field, written to the live layer only, and an absent or null key keeps the live row's previous value.
Runs on SQLite and, with DATABASE_URL, on PostgreSQL (where the upsert keeps them itself)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry.ingest import validate_samples
from telemetry.ingest_store import miner_map, miner_map_invalidate, store_batch
from telemetry.models import LiveStatus, RawSample
from telemetry.tests.test_ingest import MINERS, NOW, iso, make_device, now_iso, post, sample
from telemetry.tests.test_ingest_store import T

POOL = "stratum+tcp://pool.example.com:3333"


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


# ---------------------------------------------------------------------------------------------------
# Validation


def rejected(**fields) -> list[str]:
    return [r["reason"] for r in validate_samples([sample(**fields)], MINERS, NOW).rejected]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"pool_url": 3333}, "wrong_type:pool_url"),
        ({"pool_url": ["stratum"]}, "wrong_type:pool_url"),
        ({"pool_url": "x" * 256}, "out_of_range:pool_url"),
        ({"pool_url": "stratum+tcp://a\x00b"}, "out_of_range:pool_url"),
        ({"pool_url": "\x01"}, "out_of_range:pool_url"),
        ({"pool_url": "stratum+tcp://a\nb"}, "out_of_range:pool_url"),
        ({"fan_pct": True}, "wrong_type:fan_pct"),  # bool is not a number
        ({"fan_pct": 50.0}, "wrong_type:fan_pct"),
        ({"fan_pct": "50"}, "wrong_type:fan_pct"),
        ({"fan_pct": 101}, "out_of_range:fan_pct"),
        ({"fan_pct": -1}, "out_of_range:fan_pct"),
        ({"power_mode": "turbo"}, "unknown_power_mode"),
        ({"power_mode": "LOW"}, "unknown_power_mode"),
        ({"power_mode": ""}, "unknown_power_mode"),
        ({"power_mode": 1}, "wrong_type:power_mode"),
    ],
)
def test_a_bad_setting_rejects_its_sample_with_a_reason(fields, reason):
    assert rejected(**fields) == [reason]


@pytest.mark.parametrize(
    "fields",
    [
        {"pool_url": "x" * 255, "fan_pct": 0, "power_mode": "low"},
        {"pool_url": "", "fan_pct": 100, "power_mode": "normal"},
        {"pool_url": None, "fan_pct": None, "power_mode": None},
        {"power_mode": "high"},
    ],
)
def test_good_settings_and_nulls_are_accepted(fields):
    assert rejected(**fields) == []


def test_the_settings_ride_at_the_end_of_the_row():
    result = validate_samples([sample(pool_url=POOL, fan_pct=85, power_mode="low"), sample("S-2")], MINERS, NOW)
    assert [row[12:] for row in result.rows] == [(POOL, 85, "low"), (None, None, None)]


def test_a_bad_setting_leaves_the_rest_of_the_batch_accepted():
    batch = [sample(fan_pct=101), sample("S-2", pool_url=POOL)]
    result = validate_samples(batch, MINERS, NOW)
    assert [row[0] for row in result.rows] == [2]
    assert result.rejected == [{"index": 0, "miner": "S-1", "reason": "out_of_range:fan_pct"}]


# ---------------------------------------------------------------------------------------------------
# The live layer


@pytest.fixture
def setup(farm):
    device, _ = make_device(farm.site_a)
    return farm, device


def s(miner, ts, **fields) -> dict:
    return {"miner": miner.serial, "ts": iso(ts), "hashrate_ths": 100.0, "status": "hashing", **fields}


def store(device, samples: list):
    validated = validate_samples(samples, miner_map(device.site_id), timezone.now())
    assert validated.rejected == []
    return store_batch(site_id=device.site_id, device_id=device.pk, validated=validated)


def settings_of(miner) -> tuple:
    return LiveStatus.objects.filter(miner=miner).values_list("pool_url", "fan_pct", "power_mode").get()


@pytest.mark.django_db
def test_a_first_sample_without_settings_leaves_them_unknown(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T)])
    assert settings_of(miner) == ("", None, "")


@pytest.mark.django_db
def test_settings_go_to_live_and_absent_or_null_keeps_the_previous_value(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=3), pool_url=POOL, fan_pct=80, power_mode="high")])
    assert settings_of(miner) == (POOL, 80, "high")
    assert not hasattr(RawSample, "pool_url") and not hasattr(RawSample, "fan_pct")  # live only
    store(device, [s(miner, T - timedelta(minutes=2))])  # absent
    assert settings_of(miner) == (POOL, 80, "high")
    store(device, [s(miner, T - timedelta(minutes=1), pool_url=None, fan_pct=None, power_mode=None)])
    assert settings_of(miner) == (POOL, 80, "high")
    store(device, [s(miner, T, fan_pct=40)])  # one given: only that one moves
    assert settings_of(miner) == (POOL, 40, "high")
    live = LiveStatus.objects.get(miner=miner)
    assert live.last_seen == T and live.hashrate_ghs == pytest.approx(100_000.0)


@pytest.mark.django_db
def test_an_empty_pool_url_says_unknown(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=1), pool_url=POOL, fan_pct=0, power_mode="low")])
    store(device, [s(miner, T, pool_url="")])
    assert settings_of(miner) == ("", 0, "low")


@pytest.mark.django_db
def test_within_a_batch_the_latest_given_value_wins(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=5), pool_url="stratum+tcp://old:1")])
    store(device, [
        s(miner, T - timedelta(minutes=2), pool_url="stratum+tcp://a:1", fan_pct=70),
        s(miner, T - timedelta(minutes=1), pool_url=POOL),
        s(miner, T),  # the newest gives none: the batch's latest ones stand
    ])  # fmt: skip
    assert settings_of(miner) == (POOL, 70, "")


@pytest.mark.django_db
def test_new_and_known_miners_in_one_batch(setup):
    # On PostgreSQL the known miner keeps its settings inside the upsert; the new one is inserted with
    # placeholders and blanked in the same transaction.
    farm, device = setup
    known, new = farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]
    store(device, [s(known, T - timedelta(minutes=1), pool_url=POOL, fan_pct=60, power_mode="normal")])
    store(device, [s(known, T), s(new, T, power_mode="low")])
    assert settings_of(known) == (POOL, 60, "normal")
    assert settings_of(new) == ("", None, "low")


@pytest.mark.django_db
def test_a_resent_batch_changes_nothing(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    batch = [s(miner, T - timedelta(minutes=1), pool_url=POOL, fan_pct=90, power_mode="high")]
    store(device, batch)
    store(device, [s(miner, T)])
    before = LiveStatus.objects.filter(miner=miner).values().get()
    again = store(device, batch)  # older than the live row now: raw duplicates, live untouched
    assert (again.inserted, again.duplicates, again.live_changed) == (0, 1, [])
    assert LiveStatus.objects.filter(miner=miner).values().get() == before
    again = store(device, [s(miner, T)])
    assert (again.inserted, again.duplicates, again.live_changed) == (0, 1, [])
    assert LiveStatus.objects.filter(miner=miner).values().get() == before
    assert before["pool_url"] == POOL and before["fan_pct"] == 90


@pytest.mark.django_db
def test_a_late_sample_never_changes_the_settings(setup):
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T, pool_url=POOL, fan_pct=50)])
    late = store(device, [s(miner, T - timedelta(minutes=2), pool_url="stratum+tcp://late:1", fan_pct=10)])
    assert (late.inserted, late.live_changed) == (1, [])
    assert settings_of(miner) == (POOL, 50, "")


@pytest.mark.django_db
def test_the_endpoint_answers_a_bad_setting_per_sample(api, farm):
    _, token = make_device(farm.site_a)
    a1, a2 = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    batch = {
        "samples": [
            sample(a1.serial, now_iso(), pool_url=POOL, fan_pct=75, power_mode="normal"),
            sample(a2.serial, now_iso(), power_mode="eco"),
        ]
    }
    response = post(api, token, batch)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [{"index": 1, "miner": a2.serial, "reason": "unknown_power_mode"}],
    }
    assert settings_of(a1) == (POOL, 75, "normal")
    assert not LiveStatus.objects.filter(miner=a2).exists()


@pytest.mark.django_db
def test_a_late_sample_beside_a_new_one_does_not_set_the_settings(setup):
    # The late sample (older than live) gives a pool, the new one none: live keeps its own.
    farm, device = setup
    miner = farm.miners[("site-a", "own")]
    store(device, [s(miner, T - timedelta(minutes=1), pool_url=POOL, fan_pct=50)])
    result = store(device, [
        s(miner, T - timedelta(minutes=2), pool_url="stratum+tcp://late:1", fan_pct=10, power_mode="low"),
        s(miner, T),
    ])  # fmt: skip
    assert (result.inserted, result.live_changed) == (2, [miner.pk])
    assert settings_of(miner) == (POOL, 50, "")
    # A newer sample that is not the batch's newest does set them.
    store(device, [s(miner, T + timedelta(minutes=1), fan_pct=20), s(miner, T + timedelta(minutes=2))])
    assert settings_of(miner) == (POOL, 20, "")
