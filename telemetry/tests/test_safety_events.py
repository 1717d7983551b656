"""Safety events: validated one by one, stored once per (device, event id), each raising an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import OperationalError

from hashinsight.events.models import OutboxEvent
from telemetry.ingest_store import miner_map_invalidate
from telemetry.models import Alert, SafetyEvent
from telemetry.safety import MAX_EVENTS, validate_safety_events
from telemetry.tests.test_ingest import assert_error_shape, make_device

URL = "/api/edge/v1/events/safety/batch"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINERS = {"S-1": (1, None)}
_DROP = object()


@pytest.fixture(autouse=True)
def _fresh_miner_maps():
    miner_map_invalidate()
    yield
    miner_map_invalidate()


def ev(event_id="e-1", miner="S-1", kind="overheat_shutdown", ts=None, **extra) -> dict:
    body = {"event_id": event_id, "miner": miner, "kind": kind, "ts": ts or "2026-11-26T11:59:00Z", **extra}
    return {k: v for k, v in body.items() if v is not _DROP}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("x", "not_an_object"),
        (ev(event_id=_DROP), "missing_field:event_id"),
        (ev(event_id=7), "wrong_type:event_id"),
        (ev(event_id=""), "out_of_range:event_id"),
        (ev(event_id="x" * 65), "out_of_range:event_id"),
        (ev(miner=5), "wrong_type:miner"),
        (ev(miner="S-404"), "unknown_miner"),
        (ev(kind=_DROP), "missing_field:kind"),
        (ev(kind=1), "wrong_type:kind"),
        (ev(kind="meltdown"), "unknown_kind"),
        (ev(ts=_DROP), "missing_field:ts"),
        (ev(ts=5), "wrong_type:ts"),
        (ev(ts="soon"), "bad_ts"),
        (ev(ts="2026-11-26T11:59:00"), "ts_not_utc"),
        (ev(ts="2026-11-26T12:06:00Z"), "ts_in_future"),
        (ev(ts="2026-11-19T11:59:00Z"), "ts_too_old"),
        (ev(details=[1]), "wrong_type:details"),
        (ev(details={"x": "y" * 5000}), "out_of_range:details"),
    ],
)
def test_each_bad_event_is_rejected_with_its_reason(bad, reason):
    valid, rejected = validate_safety_events([bad], MINERS, NOW)
    assert valid == []
    assert [r["reason"] for r in rejected] == [reason]


def test_valid_events_with_and_without_a_miner():
    batch = [ev(details={"temp_chip_max_c": 98}), ev("e-2", miner=_DROP, kind="power_loss"), ev(event_id="e-1")]
    valid, rejected = validate_safety_events(batch, MINERS, NOW)
    assert [(v["event_id"], v["miner_id"], v["kind"]) for v in valid] == [
        ("e-1", 1, "overheat_shutdown"),
        ("e-2", None, "power_loss"),
    ]
    assert valid[0]["ts"] == datetime(2026, 11, 26, 11, 59, tzinfo=UTC)
    assert valid[0]["details"] == {"temp_chip_max_c": 98}
    assert rejected == [{"index": 2, "event_id": "e-1", "miner": "S-1", "reason": "duplicate_in_batch"}]


# ---------------------------------------------------------------------------------------------------
# The endpoint


@pytest.fixture
def edge(farm):
    return make_device(farm.site_a, name="rack-7 collector")


def post(api, token, events):
    return api.post(
        URL, data=json.dumps({"events": events}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def recent(minutes: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.mark.django_db
def test_events_are_stored_once_and_raise_alerts(api, farm, edge):
    device, token = edge
    miner = farm.miners[("site-a", "client-x")]
    events = [
        ev("e-1", miner.serial, "overheat_shutdown", recent(), details={"temp_chip_max_c": 97.5}),
        ev("e-2", miner.serial, "fan_failure", recent()),
        ev("e-3", _DROP, "power_loss", recent()),
        ev("e-4", "not-ours", "hashboard_failure", recent()),
    ]
    response = post(api, token, events)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "accepted": 3, "duplicates": 0,
        "rejected": [{"index": 3, "event_id": "e-4", "miner": "not-ours", "reason": "unknown_miner"}],
    }  # fmt: skip
    stored = {e.event_id: e for e in SafetyEvent.objects.select_related("alert")}
    assert set(stored) == {"e-1", "e-2", "e-3"}
    overheat = stored["e-1"]
    assert (overheat.device_id, overheat.site_id, overheat.miner_id, overheat.details) == (
        device.pk,
        farm.site_a.pk,
        miner.pk,
        {"temp_chip_max_c": 97.5},
    )
    alert = overheat.alert
    assert (alert.alert_type, alert.severity, alert.miner_id, alert.customer_id) == (
        "safety_overheat_shutdown",
        "critical",
        miner.pk,
        farm.client_x.pk,
    )
    assert miner.serial in alert.message and "overheating" in alert.message
    assert alert.evidence["safety_event_id"] == overheat.pk
    assert (stored["e-2"].alert.alert_type, stored["e-2"].alert.severity) == ("safety_fan_failure", "warning")
    site_alert = stored["e-3"].alert
    assert (site_alert.alert_type, site_alert.severity, site_alert.miner_id) == ("safety_power_loss", "critical", None)
    [published] = OutboxEvent.objects.filter(event_type="safety_events.received").values_list("payload", flat=True)
    assert published == {
        "site_id": farm.site_a.pk,
        "device_id": device.pk,
        "safety_event_ids": [stored[k].pk for k in ("e-1", "e-2", "e-3")],
    }
    assert OutboxEvent.objects.filter(event_type="alert.raised").count() == 3


@pytest.mark.django_db
def test_a_resent_batch_is_all_duplicates_and_changes_nothing(api, farm, edge):
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    events = [ev("e-1", miner.serial, "hashboard_failure", recent()), ev("e-2", miner.serial, "fan_failure", recent())]
    assert post(api, token, events).json()["accepted"] == 2
    alerts_before = list(Alert.objects.values("pk", "count", "last_seen"))
    outbox_before = OutboxEvent.objects.count()
    assert post(api, token, events).json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert SafetyEvent.objects.count() == 2
    assert list(Alert.objects.values("pk", "count", "last_seen")) == alerts_before
    assert OutboxEvent.objects.count() == outbox_before


@pytest.mark.django_db
def test_a_new_event_of_the_same_kind_counts_onto_the_open_alert(api, farm, edge):
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    post(api, token, [ev("e-1", miner.serial, "fan_failure", recent(2))])
    post(api, token, [ev("e-2", miner.serial, "fan_failure", recent(1))])
    alert = Alert.objects.get()
    assert alert.count == 2
    assert set(SafetyEvent.objects.values_list("alert_id", flat=True)) == {alert.pk}


@pytest.mark.django_db
def test_event_ids_are_per_device(api, farm, edge):
    _, token = edge
    _, other_token = make_device(farm.site_a, name="second collector")
    miner = farm.miners[("site-a", "own")]
    assert post(api, token, [ev("e-1", miner.serial, "power_loss", recent())]).json()["accepted"] == 1
    assert post(api, other_token, [ev("e-1", miner.serial, "power_loss", recent())]).json()["accepted"] == 1
    assert SafetyEvent.objects.count() == 2


@pytest.mark.django_db
def test_a_device_cannot_report_for_another_sites_miner(api, farm, edge):
    _, token = edge
    b_miner = farm.miners[("site-b", "own")]
    response = post(api, token, [ev("e-1", b_miner.serial, "overheat_shutdown", recent())])
    assert response.json()["rejected"][0]["reason"] == "unknown_miner"
    assert not SafetyEvent.objects.exists() and not Alert.objects.exists()


@pytest.mark.django_db
def test_bodies_are_limited_and_shaped(api, edge):
    _, token = edge
    body = assert_error_shape(post(api, token, [ev(f"e-{i}") for i in range(MAX_EVENTS + 1)]), 400, "too_many_events")
    assert body["details"]["max"] == MAX_EVENTS
    response = api.post(
        URL, data=b'{"events": [', content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert_error_shape(response, 400, "malformed_request")
    assert_error_shape(post(api, token, [ev(details={"note": "a\x00b"})]), 400, "nul_character")
    assert_error_shape(
        api.post(URL, data=b"[]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"),
        400, "invalid_body",
    )  # fmt: skip


@pytest.mark.django_db
def test_database_down_answers_503(api, farm, edge):
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    with mock.patch("telemetry.api.ingest_views.store_safety_events", side_effect=OperationalError("down")):
        response = post(api, token, [ev("e-1", miner.serial, "power_loss", recent())])
    assert_error_shape(response, 503, "database_unavailable")
    assert response["Retry-After"].isdigit()


@pytest.mark.django_db
def test_safety_events_are_seen_within_the_users_scope(api, farm, edge):
    from telemetry.safety import safety_event_list

    _, token = edge
    x_miner, own_miner = farm.miners[("site-a", "client-x")], farm.miners[("site-a", "own")]
    batch = [
        ev("x", x_miner.serial, "fan_failure", recent()),
        ev("own", own_miner.serial, "fan_failure", recent()),
        ev("site", _DROP, "power_loss", recent()),
    ]
    post(api, token, batch)
    _, b_token = make_device(farm.site_b)
    post(api, b_token, [ev("b", farm.miners[("site-b", "own")].serial, "power_loss", recent())])

    def seen(username):
        return set(safety_event_list(user=farm.users[username]).values_list("event_id", flat=True))

    assert seen("owner") == {"x", "own", "site", "b"}
    assert seen("siteowner_a") == {"x", "own", "site"}
    assert seen("siteowner_b_ro") == {"b"}
    assert seen("client_x") == {"x"}
    assert seen("client_y") == set()
    assert seen("guest") == set()


@pytest.mark.django_db
def test_admin_lists_safety_events_read_only(client, farm, edge):
    _, token = edge
    from rest_framework.test import APIClient

    post(APIClient(), token, [ev("e-1", farm.miners[("site-a", "own")].serial, "overheat_shutdown", recent())])
    event = SafetyEvent.objects.get()
    client.force_login(farm.users["owner"])
    listing = client.get("/admin/telemetry/safetyevent/")
    assert listing.status_code == 200
    assert b"e-1" in listing.content
    assert client.get("/admin/telemetry/safetyevent/add/").status_code == 403
    detail = client.get(f"/admin/telemetry/safetyevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.post(f"/admin/telemetry/safetyevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SafetyEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_a_concurrent_delivery_that_stored_an_event_first_makes_it_a_duplicate(api, farm, edge, monkeypatch):
    # The other delivery commits e-1 between our lookup and our insert: the unique constraint refuses
    # ours, and the retry finds e-1 stored.
    _, token = edge
    miner = farm.miners[("site-a", "own")]
    assert post(api, token, [ev("e-1", miner.serial, "power_loss", recent())]).json()["accepted"] == 1
    real_filter = SafetyEvent.objects.filter
    lookups = []

    def first_lookup_misses(*args, **kwargs):
        lookups.append(1)
        qs = real_filter(*args, **kwargs)
        return qs.none() if len(lookups) == 1 else qs

    monkeypatch.setattr(SafetyEvent.objects, "filter", first_lookup_misses)
    events = [ev("e-1", miner.serial, "power_loss", recent()), ev("e-2", miner.serial, "fan_failure", recent())]
    assert post(api, token, events).json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    monkeypatch.undo()
    assert sorted(SafetyEvent.objects.values_list("event_id", flat=True)) == ["e-1", "e-2"]
    assert Alert.objects.get(alert_type="safety_power_loss").count == 1


@pytest.mark.django_db
def test_a_batch_raises_its_alerts_in_bulk(api, farm, edge, django_assert_max_num_queries):
    from hashinsight.tests.factories import MinerFactory

    _, token = edge
    miners = [MinerFactory(site=farm.site_a, zone=farm.zone_a) for _ in range(20)]
    events = [ev(f"e-{m.pk}", m.serial, "overheat_shutdown", recent()) for m in miners]
    first = farm.miners[("site-a", "own")]
    events += [ev("twice-1", first.serial, "fan_failure", recent(2)), ev("twice-2", first.serial, "fan_failure")]
    events[-1]["ts"] = recent(1)
    with django_assert_max_num_queries(20):  # not one alert_raise (several queries) per event
        assert post(api, token, events).json()["accepted"] == 22
    assert Alert.objects.filter(alert_type="safety_overheat_shutdown").count() == 20
    fan = Alert.objects.get(alert_type="safety_fan_failure")
    assert fan.count == 2  # the same miner and kind twice in one batch: one alert, counted twice
    linked = dict(SafetyEvent.objects.values_list("event_id", "alert_id"))
    assert linked["twice-1"] == linked["twice-2"] == fan.pk
    assert all(linked[f"e-{m.pk}"] is not None for m in miners)
