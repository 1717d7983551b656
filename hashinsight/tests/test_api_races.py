"""Two requests that pass the same check together: the database constraint decides, and the loser
gets a 409 with a stable code (or, where the intent is idempotent, the same result), never a 500.

The races are simulated deterministically: the other writer's row is inserted right after our
check passed (by wrapping the validation step), or the lookup is made to miss once."""

from unittest import mock

import pytest
from django.db.models.query import QuerySet

from hashinsight.tests.factories import MinerFactory, ZoneFactory
from miners.models import Miner
from sites.models import Zone
from telemetry import services as alert_services
from telemetry.models import Alert

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"error_code", "message", "request_id", "details"}


@pytest.fixture
def owner_api(api, farm):
    api.force_authenticate(farm.users["owner"])
    return api


def conflict(response) -> str:
    assert response.status_code == 409, response.content[:500]
    body = response.json()
    assert set(body) == ERROR_KEYS
    return body["error_code"]


def test_duplicate_serial_landing_after_the_check_is_a_409(owner_api, farm):
    real_full_clean = Miner.full_clean

    def other_writer_lands_first(self, *args, **kwargs):
        real_full_clean(self, *args, **kwargs)
        if self.pk is None and not Miner.objects.filter(serial=self.serial).exists():
            MinerFactory(serial=self.serial, zone=farm.zone_b, site=farm.site_b)

    body = {"site": farm.site_a.pk, "zone": farm.zone_a.pk, "model": farm.miners[("site-a", "own")].model_id,
            "serial": "RACE-0001"}  # fmt: skip
    with mock.patch.object(Miner, "full_clean", other_writer_lands_first):
        response = owner_api.post("/api/v1/miners", body, format="json")
    assert conflict(response) == "duplicate_serial"
    # Ours was not written (the simulated writer shared our transaction, so it rolled back with it).
    assert not Miner.objects.filter(serial="RACE-0001", site=farm.site_a).exists()


def test_any_other_constraint_hit_on_write_is_a_409_conflict(owner_api, farm):
    taken = farm.miners[("site-a", "client-x")]
    Miner.objects.filter(pk=taken.pk).update(rack="R9", shelf=1, slot=1)
    mine = farm.miners[("site-a", "own")]
    # Validation passed before the other writer took the rack position.
    with mock.patch.object(Miner, "full_clean", lambda self, *a, **k: None):
        response = owner_api.patch(f"/api/v1/miners/{mine.pk}", {"rack": "R9", "shelf": 1, "slot": 1}, format="json")
    assert conflict(response) == "conflict"
    mine.refresh_from_db()
    assert (mine.rack, mine.shelf, mine.slot) == ("", None, None)


def test_delete_blocked_by_a_protected_reference_is_a_409(owner_api, farm):
    zone = ZoneFactory(site=farm.site_a, name="Empty for now")
    real_exists = QuerySet.exists

    def miner_added_after_the_check(self):
        # The service's "is it empty?" check passes; a miner is placed in the zone right after.
        if self.model is Miner and not Miner.objects.filter(zone=zone).count():
            MinerFactory(zone=zone, site=farm.site_a)
            return False
        return real_exists(self)

    with mock.patch.object(QuerySet, "exists", miner_added_after_the_check):
        response = owner_api.delete(f"/api/v1/zones/{zone.pk}")
    assert conflict(response) == "protected"
    assert Zone.objects.filter(pk=zone.pk).exists()


def test_two_first_raises_of_one_alert_make_one_alert(farm):
    first = alert_services.alert_raise(site=farm.site_a, alert_type="offline", severity="warning", message="one")
    real_lookup = alert_services._open_alerts
    calls = []

    def misses_once(keys):
        calls.append(keys)
        return {} if len(calls) == 1 else real_lookup(keys)

    # The second raise looked before the first one committed, so it also tries to insert.
    with mock.patch.object(alert_services, "_open_alerts", misses_once):
        second = alert_services.alert_raise(site=farm.site_a, alert_type="offline", severity="critical", message="two")
    assert second.pk == first.pk
    alert = Alert.objects.get(pk=first.pk)
    assert (alert.count, alert.severity, alert.message) == (2, "critical", "two")
    assert Alert.objects.filter(site=farm.site_a, alert_type="offline").count() == 1
