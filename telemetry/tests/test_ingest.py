"""Ingest: per-sample validation (every rejection reason) and the HTTP endpoint (auth, device isolation,
gzip, body limits, error shapes, database down)."""

from __future__ import annotations

import gzip
import json
import secrets
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import OperationalError

from hashinsight.accounts.models import hash_secret
from telemetry.ingest import MAX_SAMPLES, validate_samples
from telemetry.ingest_store import miner_map_invalidate
from telemetry.models import EdgeDevice, LiveStatus, RawSample

URL = "/api/edge/v1/telemetry/ingest"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINERS = {"S-1": (1, 10), "S-2": (2, None)}
_DROP = object()


def make_device(site, name: str = "edge") -> tuple[EdgeDevice, str]:
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
    device = EdgeDevice.objects.create(
        site=site, name=name, token_prefix=prefix, token_hash=hash_secret(secret), secret_sealed="x"
    )
    return device, f"hie_{prefix}_{secret}"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def sample(miner: str = "S-1", ts: datetime | str | None = None, **fields) -> dict:
    if ts is None:
        ts = NOW - timedelta(seconds=30)
    base = {
        "miner": miner, "ts": iso(ts) if isinstance(ts, datetime) else ts,
        "hashrate_ths": 110.5, "temp_chip_max_c": 72.0, "temp_inlet_c": 24.5, "temp_outlet_c": 45.0,
        "fan_rpm": [6000, 6100, 6050, 6000], "power_w": 3250, "status": "hashing", "accepted_shares": 1200,
        "rejected_shares": 3, "errors": [],
    }  # fmt: skip
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


# ---------------------------------------------------------------------------------------------------
# Validation


def reasons(samples: list) -> list[str]:
    return [r["reason"] for r in validate_samples(samples, MINERS, NOW).rejected]


def test_a_good_sample_becomes_a_typed_row():
    result = validate_samples([sample(ts="2026-11-26T11:59:30.250Z")], MINERS, NOW)
    assert result.rejected == []
    assert result.rows == [
        (1, datetime(2026, 11, 26, 11, 59, 30, 250000, tzinfo=UTC), 110.5, 72.0, 24.5, 45.0,
         [6000, 6100, 6050, 6000], 3250.0, "hashing", 1200, 3, [], None, None, None)
    ]  # fmt: skip
    assert type(result.rows[0][7]) is float  # an int power is stored as a float
    assert result.customer_of == {1: 10}


def test_only_miner_ts_and_status_are_required():
    minimal = {"miner": "S-2", "ts": "2026-11-26T11:59:00+00:00", "status": "offline"}
    result = validate_samples([minimal], MINERS, NOW)
    assert result.rejected == []
    assert result.rows == [(2, datetime(2026, 11, 26, 11, 59, tzinfo=UTC), None, None, None, None, [], None,
                            "offline", None, None, [], None, None, None)]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not a dict", "not_an_object"),
        ([1, 2], "not_an_object"),
        (sample(miner=_DROP), "missing_field:miner"),
        (sample(miner=None), "missing_field:miner"),
        (sample(miner=12), "wrong_type:miner"),
        (sample(miner="S-404"), "unknown_miner"),
        (sample(ts=_DROP), "missing_field:ts"),
        (sample(ts=1764158400), "wrong_type:ts"),
        (sample(ts="yesterday"), "bad_ts"),
        (sample(ts="2026-11-26T11:59:00" + "0" * 40), "bad_ts"),
        (sample(ts="2026-11-26T11:59:00"), "ts_not_utc"),  # naive: which zone?
        (sample(ts="2026-11-26T19:59:00+08:00"), "ts_not_utc"),
        (sample(ts=iso(NOW + timedelta(minutes=5, seconds=1))), "ts_in_future"),
        (sample(ts=iso(NOW - timedelta(hours=24, seconds=1))), "ts_too_old"),
        (sample(status=_DROP), "missing_field:status"),
        (sample(status=1), "wrong_type:status"),
        (sample(status="sleeping"), "unknown_status"),
        (sample(hashrate_ths=True), "wrong_type:hashrate_ths"),  # bool is not a number
        (sample(hashrate_ths="110"), "wrong_type:hashrate_ths"),
        (sample(hashrate_ths=-0.1), "out_of_range:hashrate_ths"),
        (sample(hashrate_ths=2500.1), "out_of_range:hashrate_ths"),
        (sample(temp_chip_max_c=150.5), "out_of_range:temp_chip_max_c"),
        (sample(temp_inlet_c=-41), "out_of_range:temp_inlet_c"),
        (sample(temp_outlet_c=[45]), "wrong_type:temp_outlet_c"),
        (sample(power_w=25_001), "out_of_range:power_w"),
        (sample(power_w=-1), "out_of_range:power_w"),
        (sample(fan_rpm=6000), "wrong_type:fan_rpm"),
        (sample(fan_rpm=[6000, 6000.5]), "wrong_type:fan_rpm"),
        (sample(fan_rpm=[6000, False]), "wrong_type:fan_rpm"),
        (sample(fan_rpm=[30_001]), "out_of_range:fan_rpm"),
        (sample(fan_rpm=[-1]), "out_of_range:fan_rpm"),
        (sample(fan_rpm=[1000] * 17), "out_of_range:fan_rpm"),
        (sample(accepted_shares=1.5), "wrong_type:accepted_shares"),
        (sample(accepted_shares=-1), "out_of_range:accepted_shares"),
        (sample(rejected_shares=True), "wrong_type:rejected_shares"),
        (sample(rejected_shares=2**63), "out_of_range:rejected_shares"),
        (sample(errors="E1"), "wrong_type:errors"),
        (sample(errors=["E1", 2]), "wrong_type:errors"),
        (sample(errors=["E"] * 33), "out_of_range:errors"),
        (sample(errors=["x" * 65]), "out_of_range:errors"),
        (sample(errors=[""]), "out_of_range:errors"),
        (sample(errors=["E\x00"]), "out_of_range:errors"),
    ],
)
def test_each_bad_sample_is_rejected_with_its_reason(bad, reason):
    assert reasons([bad]) == [reason]


def test_edges_of_each_range_are_accepted():
    edge = sample(
        ts=iso(NOW + timedelta(minutes=5)), hashrate_ths=0, temp_chip_max_c=150, temp_inlet_c=-40, power_w=25_000,
        fan_rpm=[0] * 15 + [30_000], accepted_shares=0, rejected_shares=2**63 - 1, errors=["x" * 64] * 32,
    )  # fmt: skip
    oldest = sample(miner="S-2", ts=iso(NOW - timedelta(hours=24)), hashrate_ths=2500, temp_chip_max_c=-40)
    assert reasons([edge, oldest]) == []


def test_rejections_name_the_index_and_the_serial_and_leave_the_rest_accepted():
    batch = [sample(), sample(miner="S-404"), "junk", sample(miner="S-2", status="bogus")]
    result = validate_samples(batch, MINERS, NOW)
    assert [row[0] for row in result.rows] == [1]
    assert result.rejected == [
        {"index": 1, "miner": "S-404", "reason": "unknown_miner"},
        {"index": 2, "miner": None, "reason": "not_an_object"},
        {"index": 3, "miner": "S-2", "reason": "unknown_status"},
    ]


def test_the_same_miner_and_time_twice_in_a_batch_keeps_the_first():
    # "Z" and "+00:00" name the same instant.
    batch = [
        sample(hashrate_ths=100),
        sample(ts=iso(NOW - timedelta(seconds=30)).replace("Z", "+00:00"), hashrate_ths=1),
    ]
    result = validate_samples(batch, MINERS, NOW)
    assert [row[2] for row in result.rows] == [100.0]
    assert result.rejected == [{"index": 1, "miner": "S-1", "reason": "duplicate_in_batch"}]


def test_rows_come_out_sorted_by_miner_and_time():
    batch = [sample(miner="S-2", ts=iso(NOW)), sample(ts=iso(NOW)), sample(ts=iso(NOW - timedelta(minutes=1)))]
    rows = validate_samples(batch, MINERS, NOW).rows
    assert [(r[0], r[1]) for r in rows] == [(1, NOW - timedelta(minutes=1)), (1, NOW), (2, NOW)]


def test_samples_sharing_a_timestamp_are_each_judged_on_it():
    # A collector stamps a poll round with one time: each string is parsed once per batch, and every
    # sample carrying it gets the same verdict.
    future, good, bad = iso(NOW + timedelta(minutes=6)), iso(NOW), "2026-11-26T12:00:00+08:00"
    batch = [sample(miner=m, ts=t) for t in (future, good, bad) for m in ("S-1", "S-2")]
    result = validate_samples(batch, MINERS, NOW)
    assert [(r[0], r[1]) for r in result.rows] == [(1, NOW), (2, NOW)]
    assert [(r["index"], r["reason"]) for r in result.rejected] == [
        (0, "ts_in_future"), (1, "ts_in_future"), (4, "ts_not_utc"), (5, "ts_not_utc"),
    ]  # fmt: skip


def test_long_serials_are_cut_in_rejections():
    assert validate_samples([sample(miner="x" * 500)], MINERS, NOW).rejected[0]["miner"] == "x" * 64


# ---------------------------------------------------------------------------------------------------
# The endpoint


@pytest.fixture
def edge(farm):
    device, token = make_device(farm.site_a)
    return device, token


def post(api, token, body, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.post(URL, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def now_iso(seconds_ago: int = 30) -> str:
    return iso(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds_ago))


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error_code", "message", "request_id", "details"}
    assert body["error_code"] == code
    return body


@pytest.mark.django_db
def test_a_batch_is_stored_and_answered_with_counts(api, farm, edge):
    device, token = edge
    a1, a2 = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    batch = {"samples": [sample(a1.serial, now_iso()), sample(a2.serial, now_iso()), sample("nope", now_iso())]}
    response = post(api, token, batch)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [{"index": 2, "miner": "nope", "reason": "unknown_miner"}],
    }
    assert set(RawSample.objects.values_list("miner_id", "site_id", "device_id")) == {
        (a1.pk, farm.site_a.pk, device.pk),
        (a2.pk, farm.site_a.pk, device.pk),
    }
    assert LiveStatus.objects.get(miner=a1).customer_id == farm.client_x.pk
    timing = response["Server-Timing"]
    for part in ("auth", "parse", "validate", "write", "live", "commit", "total", "cpu"):
        assert f"{part};dur=" in timing


@pytest.mark.django_db
def test_a_device_cannot_write_another_sites_miners(api, farm, edge):
    _, token = edge
    b_miner = farm.miners[("site-b", "client-x")]
    response = post(api, token, {"samples": [sample(b_miner.serial, now_iso())]})
    assert response.status_code == 200
    # Same answer as a serial that exists nowhere: nothing learnt about site B.
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [{"index": 0, "miner": b_miner.serial, "reason": "unknown_miner"}],
    }
    assert not RawSample.objects.exists()
    assert not LiveStatus.objects.exists()


@pytest.mark.django_db
def test_a_miner_moved_away_is_refused_once_the_map_expires(api, farm, edge, monkeypatch):
    from telemetry import ingest_store

    _, token = edge
    miner = farm.miners[("site-a", "own")]
    assert post(api, token, {"samples": [sample(miner.serial, now_iso(90))]}).json()["accepted"] == 1
    miner.site, miner.zone = farm.site_b, farm.zone_b
    miner.save()
    clock = [ingest_store.time.monotonic() + ingest_store.MINER_MAP_TTL_S + 0.1]
    monkeypatch.setattr(ingest_store.time, "monotonic", lambda: clock[0])
    response = post(api, token, {"samples": [sample(miner.serial, now_iso(30))]})
    assert response.json()["rejected"] == [{"index": 0, "miner": miner.serial, "reason": "unknown_miner"}]
    assert RawSample.objects.count() == 1


@pytest.mark.django_db
def test_a_new_miner_is_accepted_at_once(api, farm, edge, monkeypatch):
    from hashinsight.tests.factories import MinerFactory
    from telemetry import ingest_store

    _, token = edge
    known = farm.miners[("site-a", "own")]
    assert post(api, token, {"samples": [sample(known.serial, now_iso())]}).json()["accepted"] == 1
    new = MinerFactory(site=farm.site_a, zone=farm.zone_a)
    clock = [ingest_store.time.monotonic() + ingest_store.MINER_MAP_RELOAD_S + 0.1]  # inside the TTL
    monkeypatch.setattr(ingest_store.time, "monotonic", lambda: clock[0])
    assert post(api, token, {"samples": [sample(new.serial, now_iso())]}).json()["accepted"] == 1


@pytest.mark.django_db
def test_a_bogus_serial_reloads_the_map_at_most_once_per_ttl(api, farm, edge, monkeypatch):
    from telemetry import ingest_store

    _, token = edge
    loads = []
    real = ingest_store._load_miner_map
    monkeypatch.setattr(ingest_store, "_load_miner_map", lambda site_id: loads.append(site_id) or real(site_id))
    clock = [1000.0]
    monkeypatch.setattr(ingest_store.time, "monotonic", lambda: clock[0])

    def send_at(t: float, serial: str) -> None:
        clock[0] = 1000.0 + t
        assert post(api, token, {"samples": [sample(serial, now_iso())]}).json()["rejected"][0]["reason"] == (
            "unknown_miner"
        )

    send_at(0, "bogus")
    assert len(loads) == 1  # first load
    send_at(2, "bogus")
    assert len(loads) == 2  # maybe a new miner: read again; still unknown
    send_at(4, "bogus")
    send_at(6.9, "bogus")
    assert len(loads) == 2  # known to be unknown until the map expires (loaded at t=2, TTL 5 s)
    send_at(7.1, "bogus")
    assert len(loads) == 3  # expired
    send_at(7.5, "other")
    assert len(loads) == 3  # a new unknown serial, but the map is younger than MINER_MAP_RELOAD_S
    send_at(8.2, "other")
    assert len(loads) == 4


@pytest.mark.django_db
def test_gzip_bodies_are_accepted(api, farm, edge):
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    body = gzip.compress(json.dumps({"samples": [sample(miner.serial, now_iso())]}).encode())
    response = post(api, token, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


@pytest.mark.django_db
def test_a_zip_bomb_answers_413_without_inflating_it(api, farm, edge, monkeypatch):
    from telemetry.api import ingest_views

    _, token = edge
    monkeypatch.setattr(ingest_views, "MAX_BODY_BYTES", 64 * 1024)
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")  # 50 MB of blanks, ~50 kB sent
    assert len(bomb) < 64 * 1024
    seen = []
    real = ingest_views.zlib.decompressobj

    def spy(*args, **kwargs):
        inner = real(*args, **kwargs)
        wrapper = mock.Mock(wraps=inner)

        def decompress(data, max_length=0):
            out = inner.decompress(data, max_length)
            seen.append(len(out))
            return out

        wrapper.decompress = decompress
        type(wrapper).eof = mock.PropertyMock(side_effect=lambda: inner.eof)
        return wrapper

    monkeypatch.setattr(ingest_views.zlib, "decompressobj", spy)
    response = post(api, token, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert_error_shape(response, 413, "request_too_large")
    assert seen and max(seen) <= 64 * 1024 + 1


@pytest.mark.django_db
def test_oversized_body_answers_413(api, farm, edge, monkeypatch):
    from telemetry.api import ingest_views

    _, token = edge
    monkeypatch.setattr(ingest_views, "MAX_BODY_BYTES", 1000)
    assert_error_shape(post(api, token, {"samples": [], "pad": "x" * 2000}), 413, "request_too_large")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, "malformed_request"),
        (b"\xff\xfe", {}, 400, "malformed_request"),
        (b"[]", {}, 400, "invalid_body"),
        (b'{"samples": {}}', {}, 400, "invalid_body"),
        (b"{}", {}, 400, "invalid_body"),
        (b"not gzip", {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "malformed_request"),
        (gzip.compress(b'{"samples": []}', mtime=0)[:-12], {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "malformed_request"),
        (b'{"samples": []}', {"HTTP_CONTENT_ENCODING": "br"}, 415, "unsupported_media_type"),
        (gzip.compress(b'{"samples": []}', mtime=0) * 2, {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "malformed_request"),
        (b'{"samples": [{"miner": "x", "hashrate_ths": 1e400}]}', {}, 400, "malformed_request"),
    ],
)
def test_malformed_bodies_answer_in_the_standard_shape(api, edge, body, headers, status, code):
    _, token = edge
    assert_error_shape(post(api, token, body, **headers), status, code)


@pytest.mark.django_db
def test_more_than_5000_samples_answers_400(api, edge):
    _, token = edge
    body = assert_error_shape(post(api, token, {"samples": [{}] * (MAX_SAMPLES + 1)}), 400, "too_many_samples")
    assert body["details"] == {"max": MAX_SAMPLES, "received": MAX_SAMPLES + 1}


@pytest.mark.django_db
def test_an_empty_batch_is_fine(api, edge):
    _, token = edge
    assert post(api, token, {"samples": []}).json() == {"accepted": 0, "duplicates": 0, "rejected": []}


@pytest.mark.django_db
def test_without_a_valid_device_token_nothing_is_read(api, farm, edge):
    device, token = edge
    miner = farm.miners[("site-a", "own")]
    body = {"samples": [sample(miner.serial, now_iso())]}
    assert_error_shape(api.post(URL, body, format="json"), 401, "not_authenticated")
    assert_error_shape(post(api, token + "x", body), 401, "authentication_failed")
    device.revoked_at = datetime.now(UTC)
    device.save()
    assert_error_shape(post(api, token, body), 401, "authentication_failed")
    assert not RawSample.objects.exists()


@pytest.mark.django_db
def test_a_user_session_is_not_a_device(api, farm):
    api.force_login(farm.users["owner"])
    assert api.post(URL, {"samples": []}, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_database_down_answers_503_with_retry_after(api, farm, edge):
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    with mock.patch("telemetry.api.ingest_views.store_batch", side_effect=OperationalError("connection refused")):
        response = post(api, token, {"samples": [sample(miner.serial, now_iso())]})
    assert_error_shape(response, 503, "database_unavailable")
    assert response["Retry-After"].isdigit()


@pytest.mark.django_db
def test_database_down_during_authentication_answers_503(api, edge):
    _, token = edge
    with mock.patch("telemetry.edge_auth.authenticate_device", side_effect=OperationalError("gone")):
        response = post(api, token, {"samples": []})
    assert_error_shape(response, 503, "database_unavailable")
    assert "Retry-After" in response


@pytest.mark.django_db
def test_the_garbage_collector_is_paused_during_a_batch_and_resumed_after(api, farm, edge, monkeypatch):
    import gc

    from telemetry.api import ingest_views

    _, token = edge
    miner = farm.miners[("site-a", "own")]
    seen = []
    real = ingest_views.validate_samples
    monkeypatch.setattr(ingest_views, "validate_samples", lambda *a: seen.append(gc.isenabled()) or real(*a))
    assert gc.isenabled()
    assert post(api, token, {"samples": [sample(miner.serial, now_iso())]}).status_code == 200
    assert seen == [False]
    assert gc.isenabled()
    with mock.patch("telemetry.api.ingest_views.store_batch", side_effect=OperationalError("down")):
        assert post(api, token, {"samples": [sample(miner.serial, now_iso(20))]}).status_code == 503
    assert gc.isenabled()  # resumed after an error too
