"""Generated from the access matrix and the grants in ``build_farm``: for every role and every
object endpoint, the objects a user may not see answer 404 and leak nothing, and the allowed
operations succeed. The expectations below are written out by hand, not derived from the code."""

from __future__ import annotations

import pytest

from hashinsight.accounts.roles import MATRIX, Access, Module, Role
from miners.models import Miner
from sites.models import Zone

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
    "miners": {"owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": VISIBLE["miners"]["siteowner_a"]},
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


PATCHES = {
    "sites": {"location": "Changed"},
    "zones": {"capacity_kw": "1234.00"},
    "customers": {"email": "changed@example.test"},
    "miners": {"firmware": "patched-fw"},
    "portfolio": {"quantity": 3},
}
CASES = [(e, u) for e in VISIBLE for u in USERS]


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
    for key, obj in objects(farm, endpoint).items():
        url = f"/api/v1/{endpoint}/{obj.pk}"
        detail = api.get(url)
        patch = api.patch(url, PATCHES[endpoint], format="json")
        if rule == FORBIDDEN:
            assert (detail.status_code, patch.status_code) == (403, 403), key
            continue
        if key not in visible_keys(endpoint, username, farm):
            # Hidden: the same answer as for an id that never existed, and no data in it.
            assert detail.status_code == 404, key
            assert patch.status_code == 404, key
            assert set(detail.json()) == {"error_code", "message", "request_id", "details"}
            assert str(obj.pk) not in detail.content.decode().replace(detail.json()["request_id"], "")
            continue
        assert detail.status_code == 200, key
        assert detail.json()["id"] == obj.pk
        assert patch.status_code == (200 if writable(endpoint, username, key) else 403), (key, patch.json())
    # Deleting a hidden object is a 404 and deletes nothing.
    for key, obj in objects(farm, endpoint).items():
        if rule != FORBIDDEN and key not in visible_keys(endpoint, username, farm):
            assert api.delete(f"/api/v1/{endpoint}/{obj.pk}").status_code == 404
            assert type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("username", USERS)
def test_miner_create_only_into_manageable_sites(api, farm, username):
    api.force_authenticate(farm.users[username])
    for site, zone in ((farm.site_a, farm.zone_a), (farm.site_b, farm.zone_b)):
        before = Miner.objects.count()
        body = {
            "site": site.pk,
            "zone": zone.pk,
            "model": farm.miners[("site-a", "own")].model_id,
            "serial": f"NEW-{username}-{site.slug}",
        }
        response = api.post("/api/v1/miners", body, format="json")
        may_write = writable("miners", username, (site.slug, "own"))
        if may_write:
            assert response.status_code == 201, response.json()
            assert Miner.objects.count() == before + 1
            continue
        assert Miner.objects.count() == before
        if (
            VISIBLE["miners"][username] == FORBIDDEN
            or MATRIX[(farm.users[username].role, Module.HOSTING)] < Access.FULL
        ):
            assert response.status_code == 403
        elif site.slug in {k[0] for k in visible_keys("miners", username, farm)}:
            assert response.status_code == 403  # visible through a read-only grant
            assert response.json()["error_code"] == "site_read_only"
        else:
            assert response.status_code == 400  # the site is not even a valid choice
            assert "site" in response.json()["details"]


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
