"""Alert services and the alert selector: what raising, acknowledging and resolving leave in the
database (re-read after each call), the events they publish, and that refused calls change nothing."""

from __future__ import annotations

import pytest

from hashinsight.accounts.models import User
from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from telemetry import selectors, services
from telemetry.models import Alert

pytestmark = pytest.mark.django_db


def raise_on(farm, key, *, alert_type="fan", severity="warning", message="Fan 2 stopped", **kw):
    miner = farm.miners[key]
    return services.alert_raise(
        site=miner.site, miner=miner, alert_type=alert_type, severity=severity, message=message, **kw
    )


MESSAGES = {
    "invalid_severity": "Severity must be one of info, warning, critical.",
    "miner_not_in_site": "The miner is not at this site.",
}


def alert_events(event_type=None):
    qs = OutboxEvent.objects.filter(event_type__startswith="alert.").order_by("created_at")
    return list(qs.filter(event_type=event_type) if event_type else qs)


def test_first_raise_creates_the_alert_and_publishes_it(farm):
    miner = farm.miners[("site-a", "client-x")]
    alert = raise_on(farm, ("site-a", "client-x"), severity="critical", evidence={"rpm": 0})
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.site_id, stored.miner_id, stored.customer_id) == (farm.site_a.pk, miner.pk, farm.client_x.pk)
    assert (stored.alert_type, stored.severity, stored.status, stored.count) == ("fan", "critical", "open", 1)
    assert (stored.message, stored.evidence) == ("Fan 2 stopped", {"rpm": 0})
    assert stored.first_seen == stored.last_seen
    (event,) = alert_events()
    assert (event.event_type, event.aggregate) == ("alert.raised", f"alert:{alert.pk}")
    assert event.payload == {
        "alert_id": alert.pk, "site_id": farm.site_a.pk, "customer_id": farm.client_x.pk, "miner_id": miner.pk,
        "alert_type": "fan", "severity": "critical", "status": "open", "count": 1, "message": "Fan 2 stopped",
    }  # fmt: skip


def test_a_site_wide_alert_has_no_miner_and_no_client(farm):
    alert = services.alert_raise(site=farm.site_b, alert_type="power", severity="critical", message="PDU 3 down")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.site_id, stored.miner_id, stored.customer_id, stored.evidence) == (farm.site_b.pk, None, None, {})


def test_repeats_update_the_open_alert(farm):
    first = raise_on(farm, ("site-a", "own"), evidence={"rpm": 0})
    again = raise_on(farm, ("site-a", "own"), severity="critical", message="still stopped")
    stored = Alert.objects.get(pk=first.pk)
    assert again.pk == first.pk
    assert (stored.count, stored.severity, stored.message) == (2, "critical", "still stopped")
    assert stored.evidence == {"rpm": 0}  # a repeat without evidence keeps the last
    assert stored.last_seen > stored.first_seen
    raise_on(farm, ("site-a", "own"), severity="info", evidence={"rpm": 10})
    stored = Alert.objects.get(pk=first.pk)
    assert (stored.count, stored.severity, stored.evidence) == (3, "critical", {"rpm": 10})
    assert [e.event_type for e in alert_events()] == ["alert.raised", "alert.updated", "alert.updated"]
    assert alert_events()[-1].payload["count"] == 3


def test_different_types_and_miners_are_different_alerts(farm):
    a = raise_on(farm, ("site-a", "own"), alert_type="fan")
    b = raise_on(farm, ("site-a", "own"), alert_type="temp")
    c = raise_on(farm, ("site-a", "client-x"), alert_type="fan")
    assert len({a.pk, b.pk, c.pk}) == 3


def test_long_messages_are_cut_to_500_characters(farm):
    alert = raise_on(farm, ("site-a", "own"), message="x" * 600)
    assert Alert.objects.get(pk=alert.pk).message == "x" * 500
    raise_on(farm, ("site-a", "own"), message="y" * 501)
    assert Alert.objects.get(pk=alert.pk).message == "y" * 500


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [({"severity": "apocalyptic"}, "invalid_severity"), ({"site": "site_b"}, "miner_not_in_site")],
)
def test_refused_raise_writes_nothing(farm, kwargs, code):
    miner = farm.miners[("site-a", "own")]
    site = getattr(farm, kwargs.pop("site", "site_a"))
    with pytest.raises(DomainError) as refused:
        services.alert_raise(
            site=site, miner=miner, alert_type="fan", message="m", **({"severity": "warning"} | kwargs)
        )
    assert refused.value.code == code
    assert refused.value.message == MESSAGES[code]
    assert not Alert.objects.exists()
    assert alert_events() == []


def test_acknowledge_records_who_when_and_the_note(farm):
    actor = farm.users["siteowner_a"]
    alert = raise_on(farm, ("site-a", "own"))
    returned = services.alert_acknowledge(alert=alert, actor=actor, note="  on my way  ")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.acknowledged_by_id, stored.ack_note) == ("acknowledged", actor.pk, "on my way")
    assert stored.acknowledged_at is not None
    assert returned.status == "acknowledged"
    (event,) = alert_events("alert.updated")
    assert event.payload["status"] == "acknowledged"


def test_acknowledging_twice_changes_nothing(farm):
    alert = raise_on(farm, ("site-a", "own"))
    services.alert_acknowledge(alert=alert, actor=farm.users["owner"], note="first")
    first = Alert.objects.get(pk=alert.pk)
    services.alert_acknowledge(alert=alert, actor=farm.users["admin"], note="second")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.acknowledged_by_id, stored.acknowledged_at, stored.ack_note) == (
        first.acknowledged_by_id, first.acknowledged_at, "first",
    )  # fmt: skip
    assert len(alert_events("alert.updated")) == 1


def test_resolve_records_who_when_and_the_note_once(farm):
    actor = farm.users["admin"]
    alert = raise_on(farm, ("site-a", "own"))
    services.alert_resolve(alert=alert, actor=actor, note="fan replaced")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.resolved_by_id, stored.resolution_note) == ("resolved", actor.pk, "fan replaced")
    resolved_at = stored.resolved_at
    assert resolved_at is not None
    services.alert_resolve(alert=alert, actor=farm.users["owner"], note="again")
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.resolved_by_id, stored.resolved_at, stored.resolution_note) == (
        actor.pk,
        resolved_at,
        "fan replaced",
    )
    (event,) = alert_events("alert.resolved")
    assert event.payload["status"] == "resolved"
    assert services.alert_acknowledge(alert=alert, actor=actor).status == "resolved"  # too late to acknowledge


def test_bulk_actions_change_only_what_is_still_to_change(farm):
    actor = farm.users["owner"]
    a, b, c = (raise_on(farm, ("site-a", k)) for k in ("own", "client-x", "client-y"))
    services.alert_acknowledge(alert=a, actor=actor)
    changed = services.alerts_acknowledge(alert_ids=[a.pk, b.pk, c.pk], actor=actor, note="batch")
    assert sorted(x.pk for x in changed) == sorted([b.pk, c.pk])
    assert {x.pk: x.ack_note for x in Alert.objects.all()} == {a.pk: "", b.pk: "batch", c.pk: "batch"}
    services.alert_resolve(alert=c, actor=actor)
    resolved = services.alerts_resolve(alert_ids=[a.pk, b.pk, c.pk], actor=actor)
    assert sorted(x.pk for x in resolved) == sorted([a.pk, b.pk])
    assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
    assert len(alert_events("alert.resolved")) == 3  # c alone, then a and b


def test_nothing_to_change_publishes_nothing(farm):
    alert = raise_on(farm, ("site-a", "own"))
    services.alert_resolve(alert=alert, actor=farm.users["owner"])
    before = len(alert_events())
    assert services.alerts_acknowledge(alert_ids=[alert.pk], actor=farm.users["owner"]) == []
    assert services.alerts_resolve(alert_ids=[alert.pk], actor=farm.users["owner"]) == []
    assert len(alert_events()) == before


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("x" * 501, "The note may be at most 500 characters."),
        (42, "The note must be text."),
        (None, "The note must be text."),
    ],
)
def test_bad_notes_are_refused_and_change_nothing(farm, note, message):
    alert = raise_on(farm, ("site-a", "own"))
    for action in (services.alerts_acknowledge, services.alerts_resolve):
        with pytest.raises(DomainError) as refused:
            action(alert_ids=[alert.pk], actor=farm.users["owner"], note=note)
        assert (refused.value.code, refused.value.message) == ("invalid_note", message)
    assert Alert.objects.get(pk=alert.pk).status == "open"
    assert len(alert_events()) == 1


def test_a_note_of_exactly_500_characters_is_kept(farm):
    alert = raise_on(farm, ("site-a", "own"))
    services.alerts_acknowledge(alert_ids=[alert.pk], actor=farm.users["owner"], note="n" * 500)
    assert Alert.objects.get(pk=alert.pk).ack_note == "n" * 500


@pytest.mark.parametrize(
    ("username", "keys"),
    [
        ("owner", {("site-a", "own"), ("site-a", "client-x"), ("site-b", "client-y")}),
        ("siteowner_a", {("site-a", "own"), ("site-a", "client-x")}),
        ("client_x", {("site-a", "client-x")}),
        ("client_y", {("site-b", "client-y")}),
        ("customer", set()),
    ],
)
def test_alert_list_follows_the_miner_scope(farm, username, keys):
    alerts = {k: raise_on(farm, k) for k in (("site-a", "own"), ("site-a", "client-x"), ("site-b", "client-y"))}
    user = User.objects.get(pk=farm.users[username].pk)
    assert set(selectors.alert_list(user=user).values_list("pk", flat=True)) == {alerts[k].pk for k in keys}


def test_without_a_note_none_is_stored(farm):
    first, second = raise_on(farm, ("site-a", "own")), raise_on(farm, ("site-a", "client-x"))
    services.alerts_acknowledge(alert_ids=[first.pk], actor=farm.users["owner"])
    services.alerts_resolve(alert_ids=[first.pk], actor=farm.users["owner"])
    services.alert_resolve(alert=second, actor=farm.users["owner"])
    for alert in (first, second):
        stored = Alert.objects.get(pk=alert.pk)
        assert (stored.ack_note, stored.resolution_note) == ("", "")
