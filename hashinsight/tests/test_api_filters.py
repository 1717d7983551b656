"""Filters on related objects answer a hidden id exactly like a missing one (400 naming the field),
so a query string cannot probe which sites, zones, clients or miners exist."""

import pytest

from hashinsight.tests.factories import CustomerFactory, MinerFactory, ZoneFactory
from telemetry.services import alert_raise

pytestmark = pytest.mark.django_db

MISSING_ID = 987654


@pytest.fixture
def world(farm):
    # A client with miners on site B only: invisible to site A's owner and to client X.
    farm.client_z = CustomerFactory(slug="client-z")
    MinerFactory(zone=farm.zone_b, site=farm.site_b, customer=farm.client_z)
    farm.zone_b2 = ZoneFactory(site=farm.site_b, name="B2")
    farm.alert_a = alert_raise(site=farm.site_a, alert_type="offline", severity="warning", message="a")
    farm.alert_b = alert_raise(
        site=farm.site_b, miner=farm.miners[("site-b", "own")], alert_type="offline", severity="warning", message="b"
    )
    return farm


def miner(site, owner):
    return lambda f: f.miners[(site, owner)]


# (user, path, filter, the hidden object, a visible object)
CASES = [
    ("siteowner_a", "/api/v1/miners", "site", lambda f: f.site_b, lambda f: f.site_a),
    ("siteowner_a", "/api/v1/miners", "zone", lambda f: f.zone_b, lambda f: f.zone_a),
    ("siteowner_a", "/api/v1/miners", "customer", lambda f: f.client_z, lambda f: f.client_x),
    ("client_x", "/api/v1/miners", "customer", lambda f: f.client_y, lambda f: f.client_x),
    ("client_x", "/api/v1/miners", "zone", lambda f: f.zone_b2, lambda f: f.zone_a),
    ("siteowner_a", "/api/v1/zones", "site", lambda f: f.site_b, lambda f: f.site_a),
    ("siteowner_a", "/api/v1/alerts", "site", lambda f: f.site_b, lambda f: f.site_a),
    ("siteowner_a", "/api/v1/alerts", "miner", miner("site-b", "own"), miner("site-a", "own")),
    ("client_x", "/api/v1/alerts", "miner", miner("site-b", "own"), miner("site-a", "client-x")),
]  # fmt: skip


@pytest.mark.parametrize(("username", "path", "name", "hidden", "visible"), CASES)
def test_hidden_and_missing_ids_answer_alike(api, world, username, path, name, hidden, visible):
    api.force_authenticate(world.users[username])
    as_hidden = api.get(path, {name: hidden(world).pk})
    as_missing = api.get(path, {name: MISSING_ID})
    assert as_hidden.status_code == as_missing.status_code == 400
    assert as_hidden.json()["error_code"] == as_missing.json()["error_code"] == "validation_error"
    assert list(as_hidden.json()["details"]) == list(as_missing.json()["details"]) == [name]
    # Same wording too: the message must not echo anything only a real object would have.
    assert as_hidden.json()["details"][name] == [
        m.replace(str(MISSING_ID), str(hidden(world).pk)) for m in as_missing.json()["details"][name]
    ]
    assert api.get(path, {name: visible(world).pk}).status_code == 200


def test_a_visible_filter_still_filters(api, world):
    api.force_authenticate(world.users["siteowner_a"])
    rows = api.get("/api/v1/miners", {"site": world.site_a.pk}).json()["results"]
    assert rows and {r["site"] for r in rows} == {world.site_a.pk}
    rows = api.get("/api/v1/alerts", {"site": world.site_a.pk}).json()["results"]
    assert [r["id"] for r in rows] == [world.alert_a.pk]


def test_owner_may_filter_by_any_existing_object(api, world):
    api.force_authenticate(world.users["owner"])
    body = api.get("/api/v1/miners", {"customer": world.client_z.pk}).json()
    assert body["count"] == 1
    assert api.get("/api/v1/miners", {"customer": MISSING_ID}).status_code == 400


@pytest.mark.parametrize(
    ("path", "name", "body"),
    [
        ("/api/v1/zones", "site", {"name": "Z9"}),
        ("/api/v1/miners", "zone", {"serial": "W-1"}),
        ("/api/v1/miners", "customer", {"serial": "W-2"}),
    ],
)
def test_writes_refer_to_hidden_and_missing_objects_alike(api, world, path, name, body):
    api.force_authenticate(world.users["siteowner_a"])
    hidden = {"site": world.site_b, "zone": world.zone_b, "customer": world.client_z}[name]
    base = {"site": world.site_a.pk, "zone": world.zone_a.pk, "model": world.miners[("site-a", "own")].model_id}
    as_hidden = api.post(path, {**base, **body, name: hidden.pk}, format="json")
    as_missing = api.post(path, {**base, **body, name: MISSING_ID}, format="json")
    assert as_hidden.status_code == as_missing.status_code == 400
    assert as_hidden.json()["details"][name] == [
        m.replace(str(MISSING_ID), str(hidden.pk)) for m in as_missing.json()["details"][name]
    ]
