"""Acknowledge and resolve on the alerts page (single and bulk, with a note), who may do it, and the
live row fragment that renders exactly like the page's own rows."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages

from telemetry import services as alert_services
from telemetry.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(farm):
    def raise_(key, alert_type, severity="critical"):
        miner = farm.miners[key]
        return alert_services.alert_raise(
            site=miner.site, miner=miner, alert_type=alert_type, severity=severity, message=f"{alert_type} on {key}"
        )

    return {
        "a_x": raise_(("site-a", "client-x"), "fan"),
        "a_own": raise_(("site-a", "own"), "temp", "warning"),
        "a_y": raise_(("site-a", "client-y"), "offline"),
        "b_x": raise_(("site-b", "client-x"), "fan"),
    }


def fresh(alert):
    return Alert.objects.get(pk=alert.pk)


def texts(response):
    """The messages this request added (earlier ones wait in the session until a page shows them)."""
    return [str(m) for m in get_messages(response.wsgi_request)._queued_messages]


def test_acknowledge_one_with_a_note_redirects_back_with_the_query(client, farm, alerts):
    client.force_login(farm.users["siteowner_a"])
    back = "severity=critical&sort=-count&page=1"
    response = client.post(
        "/alerts/acknowledge/", {"only": alerts["a_x"].pk, "ids": [alerts["a_y"].pk], "note": " On it ", "next": back}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/alerts/?{back}"
    assert texts(response) == ["1 alert acknowledged."]
    acked = fresh(alerts["a_x"])
    assert acked.status == Alert.Status.ACKNOWLEDGED
    assert acked.ack_note == "On it"
    assert acked.acknowledged_by == farm.users["siteowner_a"]
    assert fresh(alerts["a_y"]).status == Alert.Status.OPEN  # "only" wins over the ticked boxes


def test_bulk_resolve_with_note_counts_what_changed(client, farm, alerts):
    alert_services.alert_resolve(alert=alerts["a_own"])
    client.force_login(farm.users["owner"])
    ids = [alerts["a_x"].pk, alerts["a_own"].pk, alerts["b_x"].pk]
    response = client.post("/alerts/resolve/", {"ids": ids, "note": "Replaced PSU", "next": "status=any"})
    assert response["Location"] == "/alerts/?status=any"
    assert texts(response) == ["2 alerts resolved. 1 was already in that state."]
    for key in ("a_x", "b_x"):
        alert = fresh(alerts[key])
        assert (alert.status, alert.resolution_note, alert.resolved_by) == (
            "resolved",
            "Replaced PSU",
            farm.users["owner"],
        )
    assert fresh(alerts["a_own"]).resolution_note == ""  # resolved before, untouched
    assert fresh(alerts["a_y"]).status == Alert.Status.OPEN


def test_the_redirect_never_leaves_the_alerts_page(client, farm, alerts):
    client.force_login(farm.users["owner"])
    response = client.post("/alerts/acknowledge/", {"only": alerts["a_x"].pk, "next": "//evil.example/x?a=1"})
    assert response["Location"].startswith("/alerts/?")
    assert "evil.example/x" not in response["Location"].split("?")[0]


def snapshot():
    return list(Alert.objects.order_by("pk").values_list("pk", "status", "ack_note", "resolution_note"))


def test_a_client_sees_its_alerts_without_buttons_and_is_refused_with_403(client, farm, alerts):
    client.force_login(farm.users["client_x"])
    page = client.get("/alerts/").content.decode()
    assert set(map(int, re.findall(r'data-alert-id="(\d+)"', page))) == {alerts["a_x"].pk, alerts["b_x"].pk}
    assert 'data-testid="alert-acknowledge"' not in page and 'id="alert-actions"' not in page
    before = snapshot()
    assert client.post("/alerts/acknowledge/", {"only": alerts["a_x"].pk}).status_code == 403
    assert client.post("/alerts/resolve/", {"ids": [alerts["a_x"].pk]}).status_code == 403
    assert snapshot() == before


def test_hidden_alerts_answer_404_and_nothing_changes(client, farm, alerts):
    client.force_login(farm.users["siteowner_a"])
    before = snapshot()
    assert client.post("/alerts/acknowledge/", {"only": alerts["b_x"].pk}).status_code == 404
    assert client.post("/alerts/acknowledge/", {"only": 987654}).status_code == 404
    # One hidden alert among visible ones refuses the whole batch.
    assert client.post("/alerts/resolve/", {"ids": [alerts["a_x"].pk, alerts["b_x"].pk]}).status_code == 404
    assert snapshot() == before


def test_a_read_only_grant_sees_but_may_not_act(client, farm, alerts):
    client.force_login(farm.users["siteowner_b_ro"])
    page = client.get("/alerts/").content.decode()
    assert f'data-alert-id="{alerts["b_x"].pk}"' in page
    assert 'data-testid="alert-acknowledge"' not in page
    before = snapshot()
    assert client.post("/alerts/acknowledge/", {"only": alerts["b_x"].pk}).status_code == 403
    assert snapshot() == before


def test_bad_input_changes_nothing_and_says_why(client, farm, alerts):
    client.force_login(farm.users["owner"])
    before = snapshot()
    response = client.post("/alerts/acknowledge/", {"ids": [alerts["a_x"].pk], "note": "x" * 501})
    assert texts(response) == ["The note may be at most 500 characters; nothing was changed."]
    response = client.post("/alerts/acknowledge/", {"ids": ["abc"]})
    assert texts(response) == ["The selection was not understood; nothing was changed."]
    response = client.post("/alerts/resolve/", {"note": "nothing ticked"})
    assert texts(response) == ["Select at least one alert; nothing was changed."]
    assert client.get("/alerts/acknowledge/").status_code == 405
    assert snapshot() == before


def test_api_actions_take_the_same_optional_note(api, farm, alerts):
    api.force_authenticate(farm.users["siteowner_a"])
    body = api.post(f"/api/v1/alerts/{alerts['a_x'].pk}/acknowledge", {"note": "via API"}, format="json")
    assert body.status_code == 200
    assert fresh(alerts["a_x"]).ack_note == "via API"
    too_long = api.post(f"/api/v1/alerts/{alerts['a_y'].pk}/resolve", {"note": "x" * 501}, format="json")
    assert too_long.status_code == 400
    assert fresh(alerts["a_y"]).status == Alert.Status.OPEN
    assert api.post(f"/api/v1/alerts/{alerts['a_y'].pk}/resolve").status_code == 200
    assert fresh(alerts["a_y"]).status == Alert.Status.RESOLVED


def page_row(html, pk):
    match = re.search(rf'<tr data-alert-id="{pk}".*?</tr>', html, re.S)
    assert match, f"row {pk} not on the page"
    return match.group(0)


@pytest.mark.parametrize("user", ["owner", "siteowner_a", "client_x"])
def test_the_row_fragment_is_the_server_rendered_row(client, farm, alerts, user):
    client.force_login(farm.users[user])
    alert = alerts["a_x"]
    html = client.get("/alerts/?severity=critical").content.decode()
    fragment = client.get(f"/alerts/{alert.pk}/row?severity=critical")
    assert fragment.status_code == 200
    assert fragment.content.decode().strip() == page_row(html, alert.pk)


def test_the_row_fragment_is_404_when_hidden_and_204_when_filtered_out(client, farm, alerts):
    client.force_login(farm.users["siteowner_a"])
    assert client.get(f"/alerts/{alerts['b_x'].pk}/row").status_code == 404
    assert client.get("/alerts/987654/row").status_code == 404
    alert_services.alert_resolve(alert=alerts["a_x"])
    assert client.get(f"/alerts/{alerts['a_x'].pk}/row").status_code == 204  # default: unresolved
    assert client.get(f"/alerts/{alerts['a_x'].pk}/row?status=resolved").status_code == 200
    assert client.get(f"/alerts/{alerts['a_own'].pk}/row?severity=critical").status_code == 204


def test_bulk_services_publish_one_event_per_changed_alert_and_refuse_bad_notes(farm, alerts):
    from hashinsight.core.errors import DomainError
    from hashinsight.events.models import OutboxEvent

    alert_services.alerts_acknowledge(alert_ids=[alerts["a_own"].pk], actor=farm.users["owner"])
    before = set(OutboxEvent.objects.values_list("pk", flat=True))
    ids = [alerts["a_x"].pk, alerts["a_own"].pk]
    changed = alert_services.alerts_acknowledge(alert_ids=ids, actor=farm.users["owner"], note="n")
    assert [a.pk for a in changed] == [alerts["a_x"].pk]  # a_own was acknowledged already
    new = OutboxEvent.objects.exclude(pk__in=before)
    assert [(e.event_type, e.aggregate) for e in new] == [("alert.updated", f"alert:{alerts['a_x'].pk}")]
    assert new.get().payload["status"] == "acknowledged"
    resolved = alert_services.alerts_resolve(alert_ids=ids, actor=farm.users["owner"])
    assert {a.pk for a in resolved} == set(ids)
    assert OutboxEvent.objects.filter(event_type="alert.resolved").count() == 2
    for bad in ("x" * 501, None, 5):
        with pytest.raises(DomainError):
            alert_services.alerts_resolve(alert_ids=[alerts["b_x"].pk], note=bad)
    assert fresh(alerts["b_x"]).status == Alert.Status.OPEN
