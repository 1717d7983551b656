import pytest
from django.core.management import CommandError, call_command

from hashinsight.events.models import OutboxEvent
from telemetry import services
from telemetry.models import Alert

pytestmark = pytest.mark.django_db


def raise_on(farm, key, **kw):
    miner = farm.miners[key]
    return services.alert_raise(site=miner.site, miner=miner, alert_type=kw.pop("alert_type", "fan"),
                                severity=kw.pop("severity", "warning"), message="m", **kw)  # fmt: skip


def test_repeats_count_and_escalate_and_resolved_alerts_start_afresh(farm):
    first = raise_on(farm, ("site-a", "own"))
    second = raise_on(farm, ("site-a", "own"), severity="critical")
    assert first.pk == second.pk and second.count == 2 and second.severity == "critical"
    assert raise_on(farm, ("site-a", "own"), severity="info").severity == "critical"  # never de-escalates
    services.alert_resolve(alert=second)
    fresh = raise_on(farm, ("site-a", "own"))
    assert fresh.pk != first.pk and fresh.count == 1
    alert_events = OutboxEvent.objects.filter(event_type__startswith="alert.")  # the farm's grants publish too
    types = list(alert_events.order_by("created_at").values_list("event_type", flat=True))
    assert types == ["alert.raised", "alert.updated", "alert.updated", "alert.resolved", "alert.raised"]


def test_bad_severity_is_refused_and_nothing_written(farm):
    from hashinsight.core.errors import DomainError

    with pytest.raises(DomainError):
        raise_on(farm, ("site-a", "own"), severity="apocalyptic")
    assert not Alert.objects.exists() and not OutboxEvent.objects.filter(event_type__startswith="alert.").exists()


def test_alerts_api_follows_miner_scope(api, farm):
    mine = raise_on(farm, ("site-a", "client-x"))
    theirs = raise_on(farm, ("site-a", "client-y"))
    api.force_authenticate(farm.users["client_x"])
    ids = {a["id"] for a in api.get("/api/v1/alerts").json()["results"]}
    assert ids == {mine.pk}
    assert api.get(f"/api/v1/alerts/{theirs.pk}").status_code == 404
    assert api.post(f"/api/v1/alerts/{mine.pk}/acknowledge").status_code == 403  # clients read only
    api.force_authenticate(farm.users["siteowner_b_ro"])
    assert api.get(f"/api/v1/alerts/{mine.pk}").status_code == 404
    api.force_authenticate(farm.users["siteowner_a"])
    acked = api.post(f"/api/v1/alerts/{mine.pk}/acknowledge").json()
    assert acked["status"] == "acknowledged"
    assert api.post(f"/api/v1/alerts/{mine.pk}/resolve").json()["status"] == "resolved"


def test_admin_actions_and_command(client, farm):
    alert = raise_on(farm, ("site-b", "own"))
    client.force_login(farm.users["owner"])
    client.post("/admin/telemetry/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert Alert.objects.get(pk=alert.pk).status == "acknowledged"
    call_command("alert", "resolve", str(alert.pk))
    assert Alert.objects.get(pk=alert.pk).status == "resolved"
    call_command(
        "alert", "raise", "--site", "site-b", "--type", "power", "--severity", "critical", "--message", "PDU 3 down"
    )
    assert Alert.objects.filter(alert_type="power", miner=None, severity="critical").exists()
    with pytest.raises(CommandError):
        call_command("alert", "raise", "--site", "nowhere", "--type", "x", "--message", "y")
