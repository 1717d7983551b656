"""Admin's acknowledge and resolve actions: alerts on sites the user may change, all in one go, each
with its event; alerts on a site the user only views are left as they are."""

import pytest

from hashinsight.events.models import OutboxEvent
from sites.services import site_grant
from telemetry import services
from telemetry.models import Alert

pytestmark = pytest.mark.django_db


def raise_on(farm, key):
    miner = farm.miners[key]
    return services.alert_raise(site=miner.site, miner=miner, alert_type="fan", severity="warning", message="m")


def updates(event_type):
    return sorted(OutboxEvent.objects.filter(event_type=event_type).values_list("payload__alert_id", flat=True))


@pytest.mark.parametrize(("action", "status", "event_type"), [
    ("acknowledge", Alert.Status.ACKNOWLEDGED, "alert.updated"),
    ("resolve", Alert.Status.RESOLVED, "alert.resolved"),
])  # fmt: skip
def test_action_changes_only_alerts_on_managed_sites(client, farm, action, status, event_type):
    owner = farm.users["siteowner_a"]
    site_grant(user=owner, site=farm.site_b, manage=False)  # sees B, may not change it
    managed = [raise_on(farm, ("site-a", "own")), raise_on(farm, ("site-a", "client-x"))]
    viewed = raise_on(farm, ("site-b", "own"))
    OutboxEvent.objects.filter(event_type__startswith="alert.").delete()
    client.force_login(owner)

    ids = [a.pk for a in [*managed, viewed]]
    response = client.post("/admin/telemetry/alert/", {"action": action, "_selected_action": ids})

    assert response.status_code == 302
    assert {a.pk: a.status for a in Alert.objects.filter(pk__in=ids)} == {
        managed[0].pk: status, managed[1].pk: status, viewed.pk: Alert.Status.OPEN,
    }  # fmt: skip
    assert updates(event_type) == sorted(a.pk for a in managed)
