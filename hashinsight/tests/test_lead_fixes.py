"""Small fixes of the lead's integration pass: power prices hidden from clients, alert notes in the
API, malformed session cookies, the worker column of the outbox admin."""

from decimal import Decimal

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client

from hashinsight.accounts.sessions import SessionStore
from telemetry.services import alert_acknowledge, alert_raise

pytestmark = pytest.mark.django_db


def _site_row(api, user, site):
    api.force_authenticate(user)
    response = api.get(f"/api/v1/sites/{site.pk}")
    assert response.status_code == 200
    return response.json()


def test_operators_see_and_set_the_site_power_price(api, farm):
    row = _site_row(api, farm.users["owner"], farm.site_a)
    assert Decimal(row["power_price_usd_per_kwh"]) == farm.site_a.power_price_usd_per_kwh
    response = api.patch(f"/api/v1/sites/{farm.site_a.pk}", {"power_price_usd_per_kwh": "0.0425"}, format="json")
    assert response.status_code == 200
    farm.site_a.refresh_from_db()
    assert farm.site_a.power_price_usd_per_kwh == Decimal("0.0425")


def test_a_hosting_client_never_sees_the_site_power_price(api, farm):
    row = _site_row(api, farm.users["client_x"], farm.site_a)
    assert "power_price_usd_per_kwh" not in row
    listing = api.get("/api/v1/sites").json()["results"]
    assert listing and all("power_price_usd_per_kwh" not in r for r in listing)


def test_alert_notes_are_part_of_the_alert_resource(api, farm):
    alert = alert_raise(site=farm.site_a, alert_type="fan", severity="warning", message="Fan 2 slow")
    alert_acknowledge(alert=alert, actor=farm.users["owner"], note="Technician on the way")
    api.force_authenticate(farm.users["owner"])
    row = api.get(f"/api/v1/alerts/{alert.pk}").json()
    assert row["ack_note"] == "Technician on the way"
    assert row["resolution_note"] == ""


@pytest.mark.parametrize("key", ["a" * 31 + "\x00", "abc/../" + "a" * 30, "ä" * 32])
def test_a_malformed_session_key_is_no_session(key):
    assert SessionStore(key).session_key is None
    assert SessionBase(key).session_key == key  # what Django alone would have looked up


def test_a_page_with_a_nul_session_cookie_asks_for_login_instead_of_failing():
    client = Client()
    client.cookies["sessionid"] = "a" * 31 + "\x00"
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_outbox_admin_shows_which_worker_holds_an_event(farm):
    client = Client()
    client.force_login(farm.users["owner"])
    response = client.get("/admin/events/outboxevent/")
    assert response.status_code == 200
    assert b"column-worker" in response.content


def test_words_with_two_meanings_are_translated_by_context():
    from django.utils import translation

    from hashinsight.portal.forms.tokens import TokenFilterForm
    from miners.models import Miner, MinerModel
    from sites.models import EnergySource

    with translation.override("zh-hans"):
        assert str(EnergySource.HYDRO.label) == "水电"  # a hydro power plant
        assert str(MinerModel.Cooling.HYDRO.label) == "水冷"  # a water-cooled miner
        assert str(Miner.Status.ACTIVE.label) == "运行中"  # a miner hashing
        token_statuses = dict(TokenFilterForm.base_fields["status"].choices)
        assert str(token_statuses["active"]) == "有效"  # a token still valid
