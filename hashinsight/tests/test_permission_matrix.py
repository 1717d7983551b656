"""For every role and every object endpoint, with the grants in ``build_farm``: the objects a user
may not see answer 404 and leak nothing, the allowed operations succeed and change the row, and the
refused ones change nothing. The expectations are written out by hand, not derived from the code
(nor from ``MATRIX``): a wrong rule in the code must disagree with this file."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hashinsight.accounts.roles import MATRIX, Module, Role
from hashinsight.tests.factories import ZoneFactory
from miners.models import Miner
from sites.models import Zone
from sites.services import site_grant

pytestmark = pytest.mark.django_db

USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "guest"]
EVERYTHING = "*"
FORBIDDEN = "403"

# What each user sees per endpoint: a set of object keys, everything, or the whole endpoint refused.
VISIBLE = {
    "sites": {
        "owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}, "siteowner_b_ro": {"B"},
        "client_x": {"A", "B"}, "client_y": {"A", "B"}, "customer": FORBIDDEN, "guest": FORBIDDEN,
    },
    "zones": {
        "owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}, "siteowner_b_ro": {"B"},
        "client_x": {"A", "B"}, "client_y": {"A", "B"}, "customer": FORBIDDEN, "guest": FORBIDDEN,
    },
    "customers": {
        "owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"X", "Y"}, "siteowner_b_ro": {"X", "Y"},
        "client_x": FORBIDDEN, "client_y": FORBIDDEN, "customer": FORBIDDEN, "guest": FORBIDDEN,
    },
    "miners": {
        "owner": EVERYTHING, "admin": EVERYTHING,
        "siteowner_a": {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")},
        "siteowner_b_ro": {("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")},
        "client_x": {("site-a", "client-x"), ("site-b", "client-x")},
        "client_y": {("site-a", "client-y"), ("site-b", "client-y")},
        "customer": FORBIDDEN, "guest": FORBIDDEN,
    },
    "portfolio": {
        "owner": set(), "admin": set(), "siteowner_a": set(), "siteowner_b_ro": set(), "client_x": set(),
        "client_y": set(), "customer": {"customer"}, "guest": set(),
    },
}  # fmt: skip

# Who may change what they see (everything else they see is read-only: 403 on writes).
WRITABLE = {
    "sites": {"owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}},
    "zones": {"owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}},
    "customers": {"owner": EVERYTHING, "admin": EVERYTHING},
    "miners": {
        "owner": EVERYTHING,
        "admin": EVERYTHING,
        "siteowner_a": {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")},
    },
    "portfolio": {"customer": {"customer"}},
}


def objects(farm, endpoint):
    if endpoint == "sites":
        return {"A": farm.site_a, "B": farm.site_b}
    if endpoint == "zones":
        return {"A": farm.zone_a, "B": farm.zone_b}
    if endpoint == "customers":
        return {"X": farm.client_x, "Y": farm.client_y}
    if endpoint == "miners":
        return farm.miners
    return farm.portfolio


def visible_keys(endpoint, user, farm):
    rule = VISIBLE[endpoint][user]
    return set(objects(farm, endpoint)) if rule == EVERYTHING else rule


def writable(endpoint, user, key):
    rule = WRITABLE[endpoint].get(user, set())
    return rule == EVERYTHING or key in rule


# One field per endpoint, its new value as sent and as read back from the database.
PATCHES = {
    "sites": ("location", "Changed", "Changed"),
    "zones": ("capacity_kw", "1234.00", Decimal("1234.00")),
    "customers": ("email", "changed@example.test", "changed@example.test"),
    "miners": ("firmware", "patched-fw", "patched-fw"),
    "portfolio": ("quantity", 3, 3),
}
# What DELETE answers for an object the user may change: sites, zones and clients of the farm all
# still hold miners (409, kept); a miner or a portfolio entry goes.
DELETE_WHEN_WRITABLE = {"sites": 409, "zones": 409, "customers": 409, "miners": 204, "portfolio": 204}
CASES = [(e, u) for e in VISIBLE for u in USERS]


def reread(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.mark.parametrize(("endpoint", "username"), CASES)
def test_list_shows_exactly_the_visible_objects(api, farm, endpoint, username):
    api.force_authenticate(farm.users[username])
    response = api.get(f"/api/v1/{endpoint}", {"limit": 100})
    if VISIBLE[endpoint][username] == FORBIDDEN:
        assert response.status_code == 403
        assert response.json()["error_code"] == "permission_denied"
        return
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    expected = {objects(farm, endpoint)[k].pk for k in visible_keys(endpoint, username, farm)}
    assert ids == expected


@pytest.mark.parametrize(("endpoint", "username"), CASES)
def test_detail_update_delete_follow_scope(api, farm, endpoint, username):
    api.force_authenticate(farm.users[username])
    rule = VISIBLE[endpoint][username]
    field, sent, stored = PATCHES[endpoint]
    for key, obj in objects(farm, endpoint).items():
        url = f"/api/v1/{endpoint}/{obj.pk}"
        original = getattr(reread(obj), field)
        assert original != stored  # or the check below could not tell a write from no write
        detail = api.get(url)
        patch = api.patch(url, {field: sent}, format="json")
        if rule == FORBIDDEN:
            assert (detail.status_code, patch.status_code) == (403, 403), key
            assert getattr(reread(obj), field) == original, key
            continue
        if key not in visible_keys(endpoint, username, farm):
            # Hidden: the same answer as for an id that never existed, and no data in it.
            assert detail.status_code == 404, key
            assert patch.status_code == 404, key
            assert set(detail.json()) == {"error_code", "message", "request_id", "details"}
            assert str(obj.pk) not in detail.content.decode().replace(detail.json()["request_id"], "")
            assert getattr(reread(obj), field) == original, key
            continue
        assert detail.status_code == 200, key
        assert detail.json()["id"] == obj.pk
        if writable(endpoint, username, key):
            assert patch.status_code == 200, (key, patch.json())
            assert getattr(reread(obj), field) == stored, key
        else:
            assert patch.status_code == 403, (key, patch.json())
            assert getattr(reread(obj), field) == original, key
    for key, obj in objects(farm, endpoint).items():
        response = api.delete(f"/api/v1/{endpoint}/{obj.pk}")
        if rule == FORBIDDEN:
            expected = 403
        elif key not in visible_keys(endpoint, username, farm):
            expected = 404  # deleting a hidden object is a 404 and deletes nothing
        elif not writable(endpoint, username, key):
            expected = 403
        else:
            expected = DELETE_WHEN_WRITABLE[endpoint]
        assert response.status_code == expected, (key, response.content)
        assert type(obj).objects.filter(pk=obj.pk).exists() is (expected != 204), key


# What creating a miner in each site answers, per user: 201, or the refusal and its error code. A
# hidden site is not even a valid choice (400, as for a missing one); a site seen through a read-only
# grant is a refusal (403); roles without HOSTING write access are refused outright.
MINER_CREATE = {
    "owner": {"site-a": 201, "site-b": 201},
    "admin": {"site-a": 201, "site-b": 201},
    "siteowner_a": {"site-a": 201, "site-b": (400, "validation_error")},
    "siteowner_b_ro": {"site-a": (400, "validation_error"), "site-b": (403, "site_read_only")},
    "client_x": {"site-a": (403, "permission_denied"), "site-b": (403, "permission_denied")},
    "client_y": {"site-a": (403, "permission_denied"), "site-b": (403, "permission_denied")},
    "customer": {"site-a": (403, "permission_denied"), "site-b": (403, "permission_denied")},
    "guest": {"site-a": (403, "permission_denied"), "site-b": (403, "permission_denied")},
}


@pytest.mark.parametrize("username", USERS)
def test_miner_create_only_into_manageable_sites(api, farm, username):
    api.force_authenticate(farm.users[username])
    for site, zone in ((farm.site_a, farm.zone_a), (farm.site_b, farm.zone_b)):
        before = Miner.objects.count()
        serial = f"NEW-{username}-{site.slug}"
        body = {"site": site.pk, "zone": zone.pk, "model": farm.miners[("site-a", "own")].model_id, "serial": serial}
        response = api.post("/api/v1/miners", body, format="json")
        expected = MINER_CREATE[username][site.slug]
        if expected == 201:
            assert response.status_code == 201, response.json()
            assert Miner.objects.count() == before + 1
            created = Miner.objects.get(serial=serial)
            assert (created.site_id, created.zone_id) == (site.pk, zone.pk)
            continue
        assert (response.status_code, response.json()["error_code"]) == expected
        if expected[0] == 400:
            assert "site" in response.json()["details"]
        assert Miner.objects.count() == before
        assert not Miner.objects.filter(serial=serial).exists()


def test_zone_cannot_move_into_a_read_only_site(api, farm):
    """The target of a move is checked too, not only the zone's current site."""
    user = farm.users["siteowner_a"]
    site_grant(user=user, site=farm.site_b, manage=False)
    empty = ZoneFactory(site=farm.site_a, name="A2")  # empty: only the site check can refuse the move
    api.force_authenticate(user)
    response = api.patch(f"/api/v1/zones/{empty.pk}", {"site": farm.site_b.pk}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (403, "site_read_only")
    assert Zone.objects.get(pk=empty.pk).site_id == farm.site_a.pk
    api.force_authenticate(farm.users["owner"])
    assert api.patch(f"/api/v1/zones/{empty.pk}", {"site": farm.site_b.pk}, format="json").status_code == 200
    assert Zone.objects.get(pk=empty.pk).site_id == farm.site_b.pk


def test_miner_cannot_move_into_a_read_only_site(api, farm):
    user = farm.users["siteowner_a"]
    site_grant(user=user, site=farm.site_b, manage=False)
    miner = farm.miners[("site-a", "own")]
    api.force_authenticate(user)
    response = api.patch(f"/api/v1/miners/{miner.pk}", {"site": farm.site_b.pk, "zone": farm.zone_b.pk}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (403, "site_read_only")
    stored = Miner.objects.get(pk=miner.pk)
    assert (stored.site_id, stored.zone_id) == (farm.site_a.pk, farm.zone_a.pk)
    # Nor out of one: a miner at the read-only site cannot be pulled into the managed one.
    theirs = farm.miners[("site-b", "own")]
    pulled = api.patch(f"/api/v1/miners/{theirs.pk}", {"site": farm.site_a.pk, "zone": farm.zone_a.pk}, format="json")
    assert (pulled.status_code, pulled.json()["error_code"]) == (403, "site_read_only")
    assert Miner.objects.get(pk=theirs.pk).site_id == farm.site_b.pk


def test_site_owner_creating_a_site_is_granted_it(api, farm):
    owner = farm.users["siteowner_a"]
    api.force_authenticate(owner)
    response = api.post(
        "/api/v1/sites", {"name": "New", "slug": "new", "timezone": "UTC", "capacity_kw": "100"}, format="json"
    )
    assert response.status_code == 201
    assert api.get(f"/api/v1/sites/{response.json()['id']}").status_code == 200
    api.force_authenticate(farm.users["siteowner_b_ro"])
    assert api.get(f"/api/v1/sites/{response.json()['id']}").status_code == 404


def test_zone_in_hidden_site_cannot_be_created(api, farm):
    api.force_authenticate(farm.users["siteowner_a"])
    response = api.post("/api/v1/zones", {"site": farm.site_b.pk, "name": "Sneaky", "capacity_kw": "1"}, format="json")
    assert response.status_code == 400
    assert not Zone.objects.filter(name="Sneaky").exists()


def test_admin_pages_hide_out_of_scope_objects(client, farm):
    client.force_login(farm.users["siteowner_a"])
    hidden = farm.miners[("site-b", "client-x")]
    assert client.get(f"/admin/miners/miner/{hidden.pk}/change/").status_code == 404
    assert client.get(f"/admin/sites/site/{farm.site_b.pk}/change/").status_code == 404
    listing = client.get("/admin/miners/miner/")
    assert listing.status_code == 200
    assert hidden.serial not in listing.content.decode()
    assert farm.miners[("site-a", "client-x")].serial in listing.content.decode()


def test_portal_pages_hide_out_of_scope_objects(client, farm):
    client.force_login(farm.users["client_x"])
    page = client.get("/miners/").content.decode()
    assert farm.miners[("site-a", "client-x")].serial in page
    assert farm.miners[("site-a", "client-y")].serial not in page
    client.force_login(farm.users["siteowner_a"])
    assert client.get(f"/sites/{farm.site_b.slug}/").status_code == 404
    assert client.get(f"/sites/{farm.site_a.slug}/").status_code == 200


def test_every_role_has_a_matrix_row():
    for role in Role:
        for module in Module:
            assert (role, module) in MATRIX


def test_only_user_managers_grant_object_permissions(client, farm):
    url = f"/admin/sites/site/{farm.site_a.pk}/permissions/"
    client.force_login(farm.users["siteowner_a"])
    assert client.get(url).status_code == 403
    assert client.get(f"/admin/sites/site/{farm.site_b.pk}/permissions/").status_code == 404
    client.force_login(farm.users["admin"])
    assert client.get(url).status_code == 200
    assert client.get(f"/admin/sites/customer/{farm.client_x.pk}/permissions/").status_code == 200


def test_read_only_grant_sees_but_cannot_change_in_admin(client, farm):
    miner = farm.miners[("site-b", "own")]
    client.force_login(farm.users["siteowner_b_ro"])
    page = client.get(f"/admin/miners/miner/{miner.pk}/change/")
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    response = client.post(f"/admin/miners/miner/{miner.pk}/change/", {"serial": "HACKED"})
    assert response.status_code == 403
    miner.refresh_from_db()
    assert miner.serial != "HACKED"
