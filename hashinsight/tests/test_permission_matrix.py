"""For every role and every object endpoint, with the grants in ``build_farm``: the objects a user
may not see answer 404 and leak nothing, the allowed operations succeed and change the row, and the
refused ones change nothing. The expectations are written out by hand, not derived from the code
(nor from ``MATRIX``): a wrong rule in the code must disagree with this file. Telemetry (edge devices,
enrollment codes, live/summary/history/daily reads and their CSV, alert rules, its pages and admin)
follows on ``telemetry_farm``; commands and the audit chain (their API, the seed's retired command paths,
the audit page and both admins) close the file, on ``command_farm``."""

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
    # One collector per site (``telemetry_farm``). A device is site infrastructure, not a client's miner:
    # hosting clients see none (an empty list, 404 on each), though they see both sites.
    "edge-devices": {
        "owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}, "siteowner_b_ro": {"B"},
        "client_x": set(), "client_y": set(), "customer": FORBIDDEN, "guest": FORBIDDEN,
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
    "edge-devices": {"owner": EVERYTHING, "admin": EVERYTHING, "siteowner_a": {"A"}},  # rotate and revoke
}
# The endpoints whose objects live in ``telemetry_farm`` rather than ``farm``.
FARM_OF_ENDPOINT = {"edge-devices": "telemetry_farm"}


def objects(farm, endpoint):
    if endpoint == "sites":
        return {"A": farm.site_a, "B": farm.site_b}
    if endpoint == "zones":
        return {"A": farm.zone_a, "B": farm.zone_b}
    if endpoint == "customers":
        return {"X": farm.client_x, "Y": farm.client_y}
    if endpoint == "miners":
        return farm.miners
    if endpoint == "edge-devices":
        return farm.devices
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
LIST_CASES = [(e, u) for e in VISIBLE for u in USERS]
CASES = [(e, u) for e in PATCHES for u in USERS]


def reread(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.mark.parametrize(("endpoint", "username"), LIST_CASES)
def test_list_shows_exactly_the_visible_objects(api, request, endpoint, username):
    farm = request.getfixturevalue(FARM_OF_ENDPOINT.get(endpoint, "farm"))
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


# Portal pages -----------------------------------------------------------------------------------
# Per page and user: 200, 403 (the role may not use the page), 404 (the object is hidden: the same
# as missing) or LOGIN (anonymous visitors are sent to the login page). Written out by hand from the
# role rules in DESIGN.md and the grants of ``build_farm``; ``{alert_a}`` (client X's miner at site A),
# ``{alert_b}`` (the operator's own miner at site B) and ``{entry}`` (the customer's portfolio entry)
# are filled in per test.
LOGIN = "login"
PAGE_USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest", "anonymous"]
PAGES = {
    #                                      owner admin  so_a  so_b_ro client_x customer guest anonymous
    "/":                                   (200,  200,  200,  200,   200,     200,     200,  LOGIN),
    "/calculator/":                        (200,  200,  200,  200,   200,     200,     200,  200),
    "/sites/":                             (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sites/?format=csv":                  (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/sites/site-a/":                      (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sites/site-b/":                      (200,  200,  404,  200,   200,     403,     403,  LOGIN),
    "/sites/no-such-site/":                (404,  404,  404,  404,   404,     403,     403,  LOGIN),
    "/miners/":                            (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/miners/?format=csv":                 (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/alerts/":                            (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/alerts/?format=csv":                 (200,  200,  200,  200,   200,     403,     403,  LOGIN),
    "/alerts/{alert_a}/row":               (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/alerts/{alert_b}/row":               (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    "/jobs/":                              (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/jobs/?format=csv":                   (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/tokens/":                            (200,  200,  200,  200,   200,     200,     200,  LOGIN),
    "/tokens/?format=csv":                 (200,  200,  200,  200,   200,     200,     200,  LOGIN),
    "/portfolio/add/":                     (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/portfolio/{entry}/edit/":            (404,  404,  404,  404,   404,     200,     403,  LOGIN),
    "/portfolio/{entry}/delete/":          (404,  404,  404,  404,   404,     200,     403,  LOGIN),
    "/admin/sites/site/{site_a}/permissions/":     (200, 200, 403, 404, LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/sites/customer/{client_x}/permissions/": (200, 200, 403, 403, LOGIN, LOGIN, LOGIN, LOGIN),
    # Job runs (SYSTEM: read for site owners) and event failures, searchable in the admin. Events carry
    # other sites' payloads, so only owners and admins read them.
    "/admin/events/jobrun/?q=relay":       (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/events/eventfailure/?q=alert": (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/events/outboxevent/":          (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    # The API's documentation and schema are served to anyone, offline (they hold no data).
    "/api/docs/":                          (200,  200,  200,  200,   200,     200,     200,  200),
    "/api/redoc/":                         (200,  200,  200,  200,   200,     200,     200,  200),
    "/api/schema/":                        (200,  200,  200,  200,   200,     200,     200,  200),
    # Telemetry (issue 7): a site's dashboard, live list (and its CSV) and alert rules follow the site's
    # visibility (a client reads the sites its miners stand at); a miner's charts follow the miner's.
    "/sites/site-a/telemetry/":            (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sites/site-b/telemetry/":            (200,  200,  404,  200,   200,     403,     403,  LOGIN),
    "/sites/no-such-site/telemetry/":      (404,  404,  404,  404,   404,     403,     403,  LOGIN),
    "/sites/site-a/telemetry/live/":       (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sites/site-b/telemetry/live/":       (200,  200,  404,  200,   200,     403,     403,  LOGIN),
    "/sites/site-a/telemetry/live/?format=csv": (200, 200, 200, 404,  200,     403,     403,  LOGIN),
    "/sites/site-b/telemetry/live/?format=csv": (200, 200, 404, 200,  200,     403,     403,  LOGIN),
    "/miners/{miner_ax}/telemetry/":       (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/miners/{miner_ay}/telemetry/":       (200,  200,  200,  404,   404,     403,     403,  LOGIN),
    "/miners/{miner_b}/telemetry/":        (200,  200,  404,  200,   404,     403,     403,  LOGIN),
    "/sites/site-a/alert-rules/":          (200,  200,  200,  404,   200,     403,     403,  LOGIN),
    "/sites/site-b/alert-rules/":          (200,  200,  404,  200,   200,     403,     403,  LOGIN),
    # The page showing new edge credentials once: HOSTING FULL and a manage grant on the site.
    "/sites/site-a/edge-devices/credentials/": (200, 200, 200, 404,  403,     403,     403,  LOGIN),
    "/sites/site-b/edge-devices/credentials/": (200, 200, 404, 403,  403,     403,     403,  LOGIN),
    # The admin's telemetry models, scoped as the API: a hidden device is a 404.
    "/admin/telemetry/edgedevice/":        (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/telemetry/edgedevice/{device_a}/change/": (200, 200, 200, 404, LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/telemetry/edgedevice/{device_b}/change/": (200, 200, 404, 200, LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/telemetry/enrollmentcode/":    (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/telemetry/enrollmentcode/add/": (200, 200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/telemetry/alertrule/":         (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/telemetry/safetyevent/":       (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    # Intelligence (issue 9). ROI: ANALYTICS READ; a hidden site or client is a 404, an app customer sees its
    # portfolio. Market: ANALYTICS READ. Power prices: operators only (a hosting client pays its contract rate).
    # Curtailment plans: CURTAILMENT (the planner form is reachable by every role that may plan).
    "/roi/":                               (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/roi/?format=csv":                    (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/roi/?scope=site:{site_a}":           (200,  200,  200,  404,   200,     404,     403,  LOGIN),
    "/roi/?scope=customer:{client_x}":     (200,  200,  200,  200,   200,     404,     403,  LOGIN),
    "/market/":                            (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/sites/site-a/power-prices/":         (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/sites/site-b/power-prices/":         (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    "/curtailment/plans/":                 (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/plans/?format=csv":      (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/planner/":               (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    # Curtailment events, response profiles, demand-response programmes: CURTAILMENT (the forms open for every role
    # that may curtail; a read-only grant sees the form, and the service refuses its read-only sites).
    "/curtailment/events/":                (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/events/?format=csv":     (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/events/new/":            (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/profiles/":              (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/profiles/?format=csv":   (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/profiles/new/":          (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/programmes/":            (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/programmes/?format=csv": (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/programmes/new/":        (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    # Real-time responder: CURTAILMENT READ; a hidden site is a 404.
    "/curtailment/responder/":             (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/responder/?format=csv":  (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/responder/?site={site_a}&format=csv": (200, 200, 200, 400, 403,  403,     403,  LOGIN),
    "/curtailment/responder/{site_a}/":    (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/curtailment/responder/{site_b}/":    (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    "/curtailment/responder/{site_a}/?format=csv": (200, 200, 200, 404, 403,     403,     403,  LOGIN),
    # Forecasts: AI READ for every signed-in role but guests; the registry admin for staff with AI.
    "/forecasts/":                         (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/forecasts/?target=revenue":          (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/forecasts/?target=nope":             (404,  404,  404,  404,   404,     404,     403,  LOGIN),
    "/forecasts/csv?target=btc_price":     (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    # Revenue of a site: its operators (and owners/admins); of a hosting client: the client and staff who see it.
    "/forecasts/?target=revenue&subject=site:{site_a}":       (200, 200, 200, 404, 404, 404, 403, LOGIN),
    "/forecasts/?target=revenue&subject=customer:{client_x}": (200, 200, 200, 200, 200, 404, 403, LOGIN),
    "/forecasts/csv?target=revenue&subject=site:{site_a}":    (200, 200, 200, 404, 404, 404, 403, LOGIN),
    "/admin/intelligence/forecastmodel/":  (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/intelligence/forecast/":       (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    # Miner health: AI READ (a customer of the app has no miners: an empty list).
    "/miner-health/":                      (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/miner-health/?format=csv":           (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/miner-health/?tier=at_risk":         (200,  200,  200,  200,   200,     200,     403,  LOGIN),
    "/admin/intelligence/minerhealth/":    (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/intelligence/uploadedseries/": (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
}  # fmt: skip


@pytest.fixture
def portal_farm(telemetry_farm):
    from telemetry.services import alert_raise

    farm = telemetry_farm
    farm.alert_a = alert_raise(
        site=farm.site_a, miner=farm.miners[("site-a", "client-x")], alert_type="fan", severity="warning",
        message="alert A",
    )  # fmt: skip
    farm.alert_b = alert_raise(
        site=farm.site_b, miner=farm.miners[("site-b", "own")], alert_type="temp", severity="critical",
        message="alert B",
    )  # fmt: skip
    return farm


def page_url(template, farm):
    return template.format(
        alert_a=farm.alert_a.pk, alert_b=farm.alert_b.pk, entry=farm.portfolio["customer"].pk,
        site_a=farm.site_a.pk, site_b=farm.site_b.pk, client_x=farm.client_x.pk,
        device_a=farm.devices["A"].pk, device_b=farm.devices["B"].pk,
        miner_ax=farm.miners[("site-a", "client-x")].pk, miner_ay=farm.miners[("site-a", "client-y")].pk,
        miner_b=farm.miners[("site-b", "own")].pk,
    )  # fmt: skip


def sign_in(client, farm, username):
    if username != "anonymous":
        client.force_login(farm.users[username])


def assert_outcome(response, expected, what):
    if expected == LOGIN:
        assert response.status_code == 302, what
        assert "/login/" in response["Location"], what
    else:
        assert response.status_code == expected, what


@pytest.mark.parametrize("username", PAGE_USERS)
def test_every_portal_page_answers_each_role_as_written(client, portal_farm, username):
    sign_in(client, portal_farm, username)
    column = PAGE_USERS.index(username)
    for template, outcomes in PAGES.items():
        url = page_url(template, portal_farm)
        assert_outcome(client.get(url), outcomes[column], (url, username))


def csv_column(response, index):
    import csv
    import io

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    return {row[index] for row in rows[1:]}


# What each export holds, per user: the same scope as the page (a CSV is not a way around it).
CSV_MINERS = {
    "owner": {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own"),
              ("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")},
    "siteowner_a": {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")},
    "siteowner_b_ro": {("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")},
    "client_x": {("site-a", "client-x"), ("site-b", "client-x")},
}  # fmt: skip
CSV_ALERTS = {
    "owner": {"alert A", "alert B"},
    "siteowner_a": {"alert A"},
    "siteowner_b_ro": {"alert B"},
    "client_x": {"alert A"},
}


@pytest.mark.parametrize("username", list(CSV_MINERS))
def test_csv_exports_hold_exactly_the_visible_rows(client, portal_farm, username):
    client.force_login(portal_farm.users[username])
    miners = client.get("/miners/", {"format": "csv"})
    assert miners["Content-Type"].startswith("text/csv")
    serials = {portal_farm.miners[k].serial for k in CSV_MINERS[username]}
    assert csv_column(miners, 0) == serials
    alerts = client.get("/alerts/", {"format": "csv"})
    assert csv_column(alerts, 8) == CSV_ALERTS[username]  # the message column
    # A site's live list: the same miners, those of that site.
    for site in (portal_farm.site_a, portal_farm.site_b):
        expected = {portal_farm.miners[k].serial for k in CSV_MINERS[username] if k[0] == site.slug}
        live = client.get(f"/sites/{site.slug}/telemetry/live/", {"format": "csv"})
        if not expected:  # a site the user does not see (the page table checks the 404)
            assert live.status_code == 404, site.slug
            continue
        assert live["Content-Type"].startswith("text/csv")
        assert csv_column(live, 0) == expected, site.slug


# Acknowledging an alert in the page, per user, for alert A (site A) and alert B (site B): DONE (the
# status changes), 403 (seen but read-only, or a role that never acts), 404 (hidden) or LOGIN.
DONE = "done"
ALERT_ACTIONS = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, 404),
    "siteowner_b_ro": (404, 403),
    "client_x": (403, 403),
    "customer": (403, 403),
    "guest": (403, 403),
    "anonymous": (LOGIN, LOGIN),
}


@pytest.mark.parametrize("username", PAGE_USERS)
@pytest.mark.parametrize(("action", "status"), [("acknowledge", "acknowledged"), ("resolve", "resolved")])
def test_alert_actions_in_the_page(client, portal_farm, username, action, status):
    from telemetry.models import Alert

    sign_in(client, portal_farm, username)
    for alert, expected in zip((portal_farm.alert_a, portal_farm.alert_b), ALERT_ACTIONS[username], strict=True):
        response = client.post(f"/alerts/{action}/", {"ids": [alert.pk], "note": "checked"})
        stored = Alert.objects.get(pk=alert.pk)
        if expected == DONE:
            assert response.status_code == 302 and response["Location"].startswith("/alerts/"), alert.message
            assert stored.status == status, alert.message
        else:
            assert_outcome(response, expected, alert.message)
            assert stored.status == "open", alert.message


# Revoking a token in the page, per user, for tokens of client X, of the admin and of the owner.
TOKEN_REVOKE = {
    "owner": (DONE, DONE, DONE),
    "admin": (DONE, DONE, 404),  # an admin manages clients' tokens and its own, not an owner's
    "siteowner_a": (404, 404, 404),
    "client_x": (DONE, 404, 404),  # its own only
    "customer": (404, 404, 404),
    "guest": (404, 404, 404),
    "anonymous": (LOGIN, LOGIN, LOGIN),
}


@pytest.mark.parametrize("username", list(TOKEN_REVOKE))
def test_token_revoke_in_the_page(client, farm, username):
    from hashinsight.accounts.models import ApiToken
    from hashinsight.accounts.services import api_token_create

    tokens = [api_token_create(user=farm.users[u], name=f"{u}-token")[0] for u in ("client_x", "admin", "owner")]
    sign_in(client, farm, username)
    for token, expected in zip(tokens, TOKEN_REVOKE[username], strict=True):
        response = client.post(f"/tokens/{token.pk}/revoke/")
        revoked = ApiToken.objects.get(pk=token.pk).revoked_at is not None
        if expected == DONE:
            assert response.status_code == 302 and response["Location"].startswith("/tokens/"), token.name
            assert revoked, token.name
        else:
            assert_outcome(response, expected, token.name)
            assert not revoked, token.name


@pytest.mark.parametrize("username", PAGE_USERS)
def test_token_create_in_the_page_makes_a_token_of_ones_own(client, farm, username):
    from hashinsight.accounts.models import ApiToken

    sign_in(client, farm, username)
    before = ApiToken.objects.count()
    response = client.post("/tokens/", {"name": "ci", "scope": "read", "expiry": "30"})
    if username == "anonymous":
        assert_outcome(response, LOGIN, username)
        assert ApiToken.objects.count() == before
        return
    assert response.status_code == 302
    created = ApiToken.objects.get(name="ci")
    assert (created.user_id, created.scope) == (farm.users[username].pk, "read")


# Editing and removing the customer's portfolio entry in the page: only the customer may.
PORTFOLIO_WRITES = {
    "owner": 404, "admin": 404, "siteowner_a": 404, "client_x": 404, "customer": DONE, "customer2": 404,
    "guest": 403, "anonymous": LOGIN,
}  # fmt: skip


@pytest.mark.parametrize("username", list(PORTFOLIO_WRITES))
def test_portfolio_writes_in_the_page(client, farm, username):
    from miners.models import PortfolioEntry

    entry = farm.portfolio["customer"]
    expected = PORTFOLIO_WRITES[username]
    sign_in(client, farm, username)
    edit = client.post(
        f"/portfolio/{entry.pk}/edit/",
        {"model": entry.model_id, "quantity": 77, "power_price_usd_per_kwh": "0.05", "label": "edited"},
    )
    stored = PortfolioEntry.objects.get(pk=entry.pk)
    if expected == DONE:
        assert edit.status_code == 302
        assert (stored.quantity, stored.label) == (77, "edited")
    else:
        assert_outcome(edit, expected, username)
        assert stored.quantity == entry.quantity
    delete = client.post(f"/portfolio/{entry.pk}/delete/")
    gone = not PortfolioEntry.objects.filter(pk=entry.pk).exists()
    if expected == DONE:
        assert delete.status_code == 302 and gone
    else:
        assert_outcome(delete, expected, username)
        assert not gone


# Granting view on site A to a fresh site owner through the admin's access page.
ACCESS_GRANT = {"owner": DONE, "admin": DONE, "siteowner_a": 403, "siteowner_b_ro": 404, "client_x": LOGIN}


@pytest.mark.parametrize("username", list(ACCESS_GRANT))
def test_access_page_grants_only_for_user_managers(client, farm, username):
    from hashinsight.tests.factories import UserFactory
    from sites.selectors import granted_site_ids

    grantee = UserFactory(role=Role.MINING_SITE_OWNER)
    sign_in(client, farm, username)
    response = client.post(
        f"/admin/sites/site/{farm.site_a.pk}/permissions/", {"add_user": grantee.pk, "add_perm": ["view_site"]}
    )
    fresh = type(grantee).objects.get(pk=grantee.pk)
    if ACCESS_GRANT[username] == DONE:
        assert response.status_code == 302
        assert granted_site_ids(fresh) == [farm.site_a.pk]
    else:
        assert_outcome(response, ACCESS_GRANT[username], username)
        assert granted_site_ids(fresh) == []


# API endpoints beyond the object lists above, per user: the list's status, and for alerts the
# acknowledge action on alert A and alert B (DONE: 200 and the status changed). Anonymous callers
# get 401 (the API has no login page). Written by hand as the page tables above.
API_LISTS = {
    #                    owner admin so_a  so_b_ro client_x customer guest anonymous
    "/api/v1/alerts":    (200, 200,  200,  200,    200,     403,     403,  401),
    "/api/v1/jobs":      (200, 200,  200,  200,    403,     403,     403,  401),
    "/api/v1/schedules": (200, 200,  200,  200,    403,     403,     403,  401),
    "/api/v1/users":     (200, 200,  403,  403,    403,     403,     403,  401),
    "/api/v1/tokens":    (200, 200,  200,  200,    200,     200,     200,  401),
    "/api/v1/curtailment/events":   (200, 200, 200, 200, 403, 403, 403, 401),
    "/api/v1/curtailment/profiles": (200, 200, 200, 200, 403, 403, 403, 401),
    "/api/v1/curtailment/programs": (200, 200, 200, 200, 403, 403, 403, 401),
    "/api/v1/miner-health":         (200, 200, 200, 200, 200, 200, 403, 401),
    "/api/v1/miner-health/summary": (200, 200, 200, 200, 200, 200, 403, 401),
    "/api/v1/training-jobs":        (200, 200, 200, 200, 200, 200, 403, 401),
}  # fmt: skip
API_ALERT_ACK = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, 404),
    "siteowner_b_ro": (404, 403),
    "client_x": (403, 404),  # sees A read-only; B is not its miner (hidden comes before read-only)
    "customer": (403, 403),
    "guest": (403, 403),
    "anonymous": (401, 401),
}
API_ALERTS_VISIBLE = {
    "owner": {"alert A", "alert B"}, "admin": {"alert A", "alert B"}, "siteowner_a": {"alert A"},
    "siteowner_b_ro": {"alert B"}, "client_x": {"alert A"},
}  # fmt: skip


@pytest.mark.parametrize("username", PAGE_USERS)
def test_api_endpoints_answer_each_role_as_written(api, portal_farm, username):
    from telemetry.models import Alert

    if username != "anonymous":
        api.force_authenticate(portal_farm.users[username])
    column = PAGE_USERS.index(username)
    for url, outcomes in API_LISTS.items():
        assert api.get(url).status_code == outcomes[column], (url, username)
    if username in API_ALERTS_VISIBLE:
        listed = {row["message"] for row in api.get("/api/v1/alerts").json()["results"]}
        assert listed == API_ALERTS_VISIBLE[username]
    for alert, expected in zip((portal_farm.alert_a, portal_farm.alert_b), API_ALERT_ACK[username], strict=True):
        response = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge", {"note": "seen"}, format="json")
        stored = Alert.objects.get(pk=alert.pk)
        if expected == DONE:
            assert response.status_code == 200, alert.message
            assert (stored.status, stored.ack_note) == ("acknowledged", "seen"), alert.message
        else:
            assert response.status_code == expected, (alert.message, response.content)
            assert stored.status == "open", alert.message


# The miners a site's row counts, per user: only those the user may see (a client its own).
SITE_MINER_COUNTS = {
    "owner": {"site-a": 3, "site-b": 3},
    "siteowner_a": {"site-a": 3},
    "siteowner_b_ro": {"site-b": 3},
    "client_x": {"site-a": 1, "site-b": 1},
}


@pytest.mark.parametrize("username", list(SITE_MINER_COUNTS))
def test_site_rows_count_only_visible_miners(api, farm, username):
    api.force_authenticate(farm.users[username])
    rows = api.get("/api/v1/sites", {"limit": 100}).json()["results"]
    assert {row["slug"]: row["miner_count"] for row in rows} == SITE_MINER_COUNTS[username]


# Telemetry (issue 7) ----------------------------------------------------------------------------
# The farm's six miners report in every layer (raw, live, 5-minute, daily) and each site has one edge
# collector. A miner's hashrate is a power of two (TH/s), so any sum names the miners in it; the site
# rollups hold figures no sum of miners gives, so a reply shows whether it read the whole site or
# aggregated the user's own miners. The expectations below are written out by hand, as above.
THS = {
    ("site-a", "client-x"): 1.0, ("site-a", "client-y"): 2.0, ("site-a", "own"): 4.0,
    ("site-b", "client-x"): 8.0, ("site-b", "client-y"): 16.0, ("site-b", "own"): 32.0,
}  # fmt: skip
SITE_ROLLUP_THS = {"site-a": 1000.0, "site-b": 2000.0}


@pytest.fixture
def telemetry_farm(farm):
    from datetime import timedelta

    from django.utils import timezone

    from telemetry import devices
    from telemetry.models import Daily, History5m, LiveStatus, RawSample, SiteDaily, SiteHistory5m

    farm.devices, farm.device_tokens = {}, {}
    for key, site in (("A", farm.site_a), ("B", farm.site_b)):
        _code_row, code = devices.enrollment_code_create(site=site)
        device, token, _secret = devices.device_register(code=code, name=f"collector-{key}", version="1.0.0")
        farm.devices[key], farm.device_tokens[key] = device, token
    now = timezone.now().replace(microsecond=0)
    bucket = now.replace(second=0) - timedelta(hours=1, minutes=now.minute % 5)
    farm.yesterday = now.date() - timedelta(days=1)
    raw, live, h5m, daily = [], [], [], []
    for key, miner in farm.miners.items():
        ths, site, customer = THS[key], miner.site_id, miner.customer_id
        raw.append(
            RawSample(
                miner=miner,
                ts=now - timedelta(minutes=10),
                site_id=site,
                customer_id=customer,
                hashrate_ths=ths,
                status="hashing",
            )
        )
        live.append(LiveStatus(
            miner=miner, site_id=site, customer_id=customer, last_seen=now - timedelta(seconds=30),
            hashrate_ghs=ths * 1000, hashrate_ths_instant=ths, temp_chip_max_c=70.0, power_w=3000.0,
            status="hashing", updated_at=now,
        ))  # fmt: skip
        h5m.append(History5m(
            miner=miner, bucket=bucket, site_id=site, customer_id=customer, sample_count=5, hashing_count=5,
            uptime_fraction=1.0,
            avg_hashrate_ths=ths, avg_power_w=3000.0,
        ))  # fmt: skip
        daily.append(Daily(
            miner=miner, day=farm.yesterday, site_id=site, customer_id=customer, sample_count=1440,
            buckets_reported=288, avg_hashrate_ths=ths, energy_kwh=72.0, uptime_pct=100.0,
        ))  # fmt: skip
    RawSample.objects.bulk_create(raw)
    LiveStatus.objects.bulk_create(live)
    History5m.objects.bulk_create(h5m)
    Daily.objects.bulk_create(daily)
    for slug, site in (("site-a", farm.site_a), ("site-b", farm.site_b)):
        SiteHistory5m.objects.create(
            site=site, bucket=bucket, miners_reporting=3, miners_hashing=3, hashrate_ths=SITE_ROLLUP_THS[slug],
            power_w=9000.0, uptime_fraction=1.0,
        )  # fmt: skip
        SiteDaily.objects.create(
            site=site, day=farm.yesterday, miners_reporting=3, avg_hashrate_ths=SITE_ROLLUP_THS[slug],
            energy_kwh=216.0, uptime_pct=100.0,
        )  # fmt: skip
    return farm


def assert_hidden(response, obj_pk, what):
    """A hidden object answers as a missing one would, with nothing of it in the body."""
    assert response.status_code == 404, (what, response.status_code)
    body = response.json()
    assert set(body) == {"error_code", "message", "request_id", "details"}, what
    assert body["error_code"] == "not_found", what
    assert str(obj_pk) not in response.content.decode().replace(body["request_id"], ""), what


@pytest.mark.parametrize("username", USERS)
def test_edge_device_detail_rotate_revoke_follow_scope(api, telemetry_farm, username):
    """Rotate and revoke need a manage grant: the token changes (rotate) or stops (revoke) only then."""
    from telemetry.models import EdgeDevice

    farm = telemetry_farm
    api.force_authenticate(farm.users[username])
    rule = VISIBLE["edge-devices"][username]
    for key, device in farm.devices.items():
        url = f"/api/v1/edge-devices/{device.pk}"
        before = EdgeDevice.objects.get(pk=device.pk)
        detail, rotate, revoke = api.get(url), api.post(f"{url}/rotate"), api.post(f"{url}/revoke")
        after = EdgeDevice.objects.get(pk=device.pk)
        if rule == FORBIDDEN:
            assert (detail.status_code, rotate.status_code, revoke.status_code) == (403, 403, 403), key
        elif key not in visible_keys("edge-devices", username, farm):
            for response in (detail, rotate, revoke):
                assert_hidden(response, device.pk, key)
        elif not writable("edge-devices", username, key):
            assert detail.status_code == 200 and detail.json()["id"] == device.pk, key
            assert "token" not in detail.json() and "hmac_secret" not in detail.json()
            assert (rotate.status_code, rotate.json()["error_code"]) == (403, "site_read_only"), key
            assert (revoke.status_code, revoke.json()["error_code"]) == (403, "site_read_only"), key
        else:
            assert detail.status_code == 200 and detail.json()["id"] == device.pk, key
            assert rotate.status_code == 200 and revoke.status_code == 200, key
            assert rotate.json()["token"].startswith(f"hie_{after.token_prefix}_"), key
            assert after.token_hash != before.token_hash and after.revoked_at is not None, key
            continue
        assert (after.token_hash, after.revoked_at) == (before.token_hash, None), key


# Creating an enrollment code for each site: 201, or the refusal and its code. As for a miner's site, a
# hidden site is not a valid choice (400); a read-only grant is 403; roles without HOSTING FULL are 403.
EDGE_ENROLL = {
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
def test_enrollment_codes_only_for_manageable_sites(api, farm, username):
    from telemetry.models import EnrollmentCode

    api.force_authenticate(farm.users[username])
    for site in (farm.site_a, farm.site_b):
        before = EnrollmentCode.objects.filter(site=site).count()
        response = api.post("/api/v1/edge-enrollments", {"site": site.pk}, format="json")
        expected = EDGE_ENROLL[username][site.slug]
        if expected == 201:
            assert response.status_code == 201, response.json()
            assert response.json()["site"] == site.pk
            assert EnrollmentCode.objects.filter(site=site).count() == before + 1
            continue
        assert (response.status_code, response.json()["error_code"]) == expected, site.slug
        assert EnrollmentCode.objects.filter(site=site).count() == before


# The miners whose telemetry a user reads at each site (live list, dashboard summary, their own history),
# 404 for a site it does not see, 403 for roles without HOSTING: a client its own miners only.
A_ALL = {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")}
B_ALL = {("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")}
TELEMETRY_MINERS = {
    "owner": {"site-a": A_ALL, "site-b": B_ALL},
    "admin": {"site-a": A_ALL, "site-b": B_ALL},
    "siteowner_a": {"site-a": A_ALL, "site-b": 404},
    "siteowner_b_ro": {"site-a": 404, "site-b": B_ALL},
    "client_x": {"site-a": {("site-a", "client-x")}, "site-b": {("site-b", "client-x")}},
    "client_y": {"site-a": {("site-a", "client-y")}, "site-b": {("site-b", "client-y")}},
    "customer": {"site-a": 403, "site-b": 403},
    "guest": {"site-a": 403, "site-b": 403},
}
# A site's history (5-minute and daily layers): the site rollup for whoever sees the whole site; for a
# client the sum of its own miners there, never the site's figure.
SITE_HISTORY_THS = {
    "owner": {"site-a": 1000.0, "site-b": 2000.0},
    "admin": {"site-a": 1000.0, "site-b": 2000.0},
    "siteowner_a": {"site-a": 1000.0, "site-b": 404},
    "siteowner_b_ro": {"site-a": 404, "site-b": 2000.0},
    "client_x": {"site-a": 1.0, "site-b": 8.0},
    "client_y": {"site-a": 2.0, "site-b": 16.0},
    "customer": {"site-a": 403, "site-b": 403},
    "guest": {"site-a": 403, "site-b": 403},
}


def csv_rows_of(response):
    import csv
    import io

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def site_telemetry_answers(api, farm, site):
    base = f"/api/v1/telemetry/sites/{site.pk}"
    return {
        "live": api.get(f"{base}/live", {"limit": 100}),
        "live csv": api.get(f"{base}/live", {"format": "csv"}),
        "summary": api.get(f"{base}/summary"),
        "history 5m": api.get(f"{base}/history", {"resolution": "5m"}),
        "history daily": api.get(f"{base}/history", {"resolution": "daily", "from": str(farm.yesterday)}),
        "history csv": api.get(f"{base}/history", {"resolution": "5m", "format": "csv"}),
    }


@pytest.mark.parametrize("username", USERS)
def test_site_telemetry_holds_exactly_the_visible_miners(api, telemetry_farm, username):
    farm = telemetry_farm
    api.force_authenticate(farm.users[username])
    for site in (farm.site_a, farm.site_b):
        expected = TELEMETRY_MINERS[username][site.slug]
        answers = site_telemetry_answers(api, farm, site)
        if expected in (403, 404):
            for name, response in answers.items():
                if expected == 404:
                    assert_hidden(response, site.pk, (site.slug, name))
                else:
                    assert response.status_code == 403, (site.slug, name)
                    assert response.json()["error_code"] == "permission_denied", (site.slug, name)
            continue
        serials = {farm.miners[k].serial for k in expected}
        assert {r["serial"] for r in answers["live"].json()["results"]} == serials, site.slug
        assert answers["live csv"]["Content-Type"].startswith("text/csv")
        assert {row[0] for row in csv_rows_of(answers["live csv"])[1:]} == serials, site.slug
        summary = answers["summary"].json()
        assert summary["miners"] == len(expected), site.slug
        assert summary["hashrate_ths"] == sum(THS[k] for k in expected), site.slug
        history = SITE_HISTORY_THS[username][site.slug]
        for name in ("history 5m", "history daily"):
            points = answers[name].json()["points"]
            assert [p["hashrate_ths"] for p in points] == [history], (site.slug, name)
        assert [float(row[1]) for row in csv_rows_of(answers["history csv"])[1:]] == [history], site.slug


@pytest.mark.parametrize("username", USERS)
def test_miner_history_and_daily_reports_hold_exactly_the_visible_miners(api, telemetry_farm, username):
    farm = telemetry_farm
    api.force_authenticate(farm.users[username])
    rule = VISIBLE["miners"][username]
    visible = visible_keys("miners", username, farm) if rule != FORBIDDEN else set()
    for key, miner in farm.miners.items():
        url = f"/api/v1/telemetry/miners/{miner.pk}/history"
        answers = {
            "raw": api.get(url),  # 24 h: the raw layer
            "5m": api.get(url, {"resolution": "5m"}),
            "daily": api.get(url, {"resolution": "daily", "from": str(farm.yesterday)}),
            "csv": api.get(url, {"resolution": "5m", "format": "csv"}),
        }
        for layer, response in answers.items():
            if rule == FORBIDDEN:
                assert response.status_code == 403, (key, layer)
            elif key not in visible:
                assert_hidden(response, miner.pk, (key, layer))
            elif layer == "csv":
                assert [float(row[1]) for row in csv_rows_of(response)[1:]] == [THS[key]], key
            else:
                body = response.json()
                assert (body["miner"], body["layer"]) == (miner.pk, layer), key
                assert [p["hashrate_ths"] for p in body["points"]] == [THS[key]], (key, layer)
    params = {"from": str(farm.yesterday), "to": str(farm.yesterday)}
    daily, daily_csv = (
        api.get("/api/v1/telemetry/daily", params),
        api.get("/api/v1/telemetry/daily", {**params, "format": "csv"}),
    )
    if rule == FORBIDDEN:
        assert (daily.status_code, daily_csv.status_code) == (403, 403)
        return
    serials = {farm.miners[k].serial for k in visible}
    assert {r["serial"] for r in daily.json()["results"]} == serials
    assert {row[1] for row in csv_rows_of(daily_csv)[1:]} == serials
    # Asking for another client's rows, or a hidden site's, by id finds nothing rather than their rows.
    for other in ({"customer": farm.client_x.pk}, {"customer": farm.client_y.pk}, {"site": farm.site_a.pk}):
        rows = api.get("/api/v1/telemetry/daily", {**params, **other})
        if rows.status_code == 200:
            assert {r["serial"] for r in rows.json()["results"]} <= serials, other


# A site's alert rules on the API: MANAGE (reads them with can_manage, and a change is stored), READ
# with the code a change is refused with (403), or the refusal of everything (404 hidden, 403 for roles
# without HOSTING). A client reads the rules of the sites its miners stand at; changing them needs
# HOSTING FULL, which it lacks (permission_denied), where a read-only grant is site_read_only.
MANAGE, READ = "manage", "read"
ALERT_RULES = {
    "owner": {"site-a": MANAGE, "site-b": MANAGE},
    "admin": {"site-a": MANAGE, "site-b": MANAGE},
    "siteowner_a": {"site-a": MANAGE, "site-b": 404},
    "siteowner_b_ro": {"site-a": 404, "site-b": (READ, "site_read_only")},
    "client_x": {"site-a": (READ, "permission_denied"), "site-b": (READ, "permission_denied")},
    "client_y": {"site-a": (READ, "permission_denied"), "site-b": (READ, "permission_denied")},
    "customer": {"site-a": 403, "site-b": 403},
    "guest": {"site-a": 403, "site-b": 403},
}


@pytest.mark.parametrize("username", USERS)
def test_alert_rules_api_follows_scope(api, farm, username):
    from telemetry.models import AlertRule

    api.force_authenticate(farm.users[username])
    change = {"rules": [{"kind": "chip_temp_above", "threshold": 87}]}
    for site in (farm.site_a, farm.site_b):
        url = f"/api/v1/sites/{site.pk}/alert-rules"
        expected = ALERT_RULES[username][site.slug]
        read, patch, put = api.get(url), api.patch(url, change, format="json"), api.put(url, change, format="json")
        changed = AlertRule.objects.filter(site=site, kind="chip_temp_above", threshold=87).exists()
        if expected == MANAGE:
            assert read.status_code == 200 and read.json()["can_manage"] is True, site.slug
            assert patch.status_code == 200 and changed, site.slug
            assert put.status_code == 400, site.slug  # a PUT must name all five rules
            continue
        assert not changed, site.slug
        if isinstance(expected, tuple):
            assert read.status_code == 200 and read.json()["can_manage"] is False, site.slug
            assert [r["kind"] for r in read.json()["rules"]] == [
                "chip_temp_above", "hashrate_below_pct", "offline_for", "power_deviation_pct", "reject_rate_above_pct"
            ]  # fmt: skip
            for response in (patch, put):
                assert (response.status_code, response.json()["error_code"]) == (403, expected[1]), site.slug
        elif expected == 404:
            for response in (read, patch, put):
                assert_hidden(response, site.pk, site.slug)
        else:
            for response in (read, patch, put):
                assert (response.status_code, response.json()["error_code"]) == (403, "permission_denied")


# Telemetry writes in the portal, per user, at site A and site B: DONE (the change is stored), 403 (seen
# but not manageable, or a role without HOSTING FULL), 404 (hidden) or LOGIN. Saving a site's alert
# rules, a new enrollment code, and rotating and revoking the site's collector all follow one table.
TELEMETRY_PAGE_WRITES = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, 404),
    "siteowner_b_ro": (404, 403),
    "client_x": (403, 403),
    "customer": (403, 403),
    "guest": (403, 403),
    "anonymous": (LOGIN, LOGIN),
}


def rules_form(threshold):
    from telemetry import rules as R

    data = {}
    for rule in R.default_rules():
        data.update({
            f"{rule.kind}-enabled": "on", f"{rule.kind}-threshold": f"{rule.threshold:g}",
            f"{rule.kind}-duration_minutes": str(rule.duration_minutes), f"{rule.kind}-severity": rule.severity,
        })  # fmt: skip
    data["chip_temp_above-threshold"] = str(threshold)
    return data


@pytest.mark.parametrize("username", PAGE_USERS)
def test_telemetry_writes_in_the_page(client, telemetry_farm, username):
    from telemetry.models import AlertRule, EdgeDevice, EnrollmentCode

    farm = telemetry_farm
    sign_in(client, farm, username)
    sites = ((farm.site_a, farm.devices["A"]), (farm.site_b, farm.devices["B"]))
    for (site, device), expected in zip(sites, TELEMETRY_PAGE_WRITES[username], strict=True):
        base = f"/sites/{site.slug}"
        before, codes = EdgeDevice.objects.get(pk=device.pk), EnrollmentCode.objects.filter(site=site).count()
        responses = {
            "rules": client.post(f"{base}/alert-rules/", rules_form(86)),
            "enroll": client.post(f"{base}/edge-devices/enroll/", {"zone": ""}),
            "rotate": client.post(f"{base}/edge-devices/{device.pk}/rotate/"),
            "revoke": client.post(f"{base}/edge-devices/{device.pk}/revoke/"),
        }
        after = EdgeDevice.objects.get(pk=device.pk)
        stored = {
            "rules": AlertRule.objects.filter(site=site, kind="chip_temp_above", threshold=86).exists(),
            "enroll": EnrollmentCode.objects.filter(site=site).count() == codes + 1,
            "rotate": after.token_hash != before.token_hash,
            "revoke": after.revoked_at is not None,
        }
        for action, response in responses.items():
            if expected == DONE:
                assert response.status_code == 302, (site.slug, action)
                assert stored[action], (site.slug, action)
            else:
                assert_outcome(response, expected, (site.slug, action))
                assert not stored[action], (site.slug, action)


# Revoking the collectors in the admin (one action on both): DONE for the devices the user manages;
# a device seen read-only is skipped, a hidden one is not even in the list; non-staff go to the login.
ADMIN_REVOKE = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, "kept"),
    "siteowner_b_ro": ("kept", "kept"),
    "client_x": (LOGIN, LOGIN),
    "anonymous": (LOGIN, LOGIN),
}


@pytest.mark.parametrize("username", list(ADMIN_REVOKE))
def test_admin_revokes_only_manageable_devices(client, telemetry_farm, username):
    from telemetry.models import EdgeDevice

    farm = telemetry_farm
    sign_in(client, farm, username)
    ids = [farm.devices["A"].pk, farm.devices["B"].pk]
    response = client.post(
        "/admin/telemetry/edgedevice/", {"action": "revoke_devices", "_selected_action": ids, "index": 0}
    )
    outcomes = ADMIN_REVOKE[username]
    if outcomes[0] == LOGIN:
        assert_outcome(response, LOGIN, username)
    else:
        assert response.status_code == 302, username
    for pk, expected in zip(ids, outcomes, strict=True):
        assert (EdgeDevice.objects.get(pk=pk).revoked_at is not None) is (expected == DONE), (username, pk)


# Changing a site's chip temperature rule in the admin: DONE, 403 (read-only grant), 404 (hidden).
ADMIN_RULE_CHANGE = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, 404),
    "siteowner_b_ro": (404, 403),
    "client_x": (LOGIN, LOGIN),
}


@pytest.mark.parametrize("username", list(ADMIN_RULE_CHANGE))
def test_admin_changes_only_manageable_alert_rules(client, farm, username):
    from telemetry import rule_services
    from telemetry.models import AlertRule

    rules = [
        next(r for r in rule_services.site_rules(site=site) if r.kind == "chip_temp_above")
        for site in (farm.site_a, farm.site_b)
    ]
    sign_in(client, farm, username)
    for rule, expected in zip(rules, ADMIN_RULE_CHANGE[username], strict=True):
        body = {"enabled": "on", "threshold": "85", "duration_minutes": "0", "severity": "critical"}
        response = client.post(f"/admin/telemetry/alertrule/{rule.pk}/change/", body)
        threshold = AlertRule.objects.get(pk=rule.pk).threshold
        if expected == DONE:
            assert response.status_code == 302, (rule.site_id, response.content[:500])
            assert threshold == 85.0
        else:
            assert_outcome(response, expected, rule.site_id)
            assert threshold == 90.0


# A new enrollment code from the admin's add form, per site: DONE (a code row, the page showing it once),
# REFUSED (the form comes back: a site the user does not manage is no valid choice) or LOGIN.
REFUSED = "refused"
ADMIN_ENROLL = {
    "owner": (DONE, DONE),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, REFUSED),
    "siteowner_b_ro": (REFUSED, REFUSED),
    "client_x": (LOGIN, LOGIN),
}


@pytest.mark.parametrize("username", list(ADMIN_ENROLL))
def test_admin_creates_enrollment_codes_only_for_manageable_sites(client, farm, username):
    from telemetry.models import EnrollmentCode

    sign_in(client, farm, username)
    for site, expected in zip((farm.site_a, farm.site_b), ADMIN_ENROLL[username], strict=True):
        response = client.post("/admin/telemetry/enrollmentcode/add/", {"site": site.pk, "zone": ""})
        made = EnrollmentCode.objects.filter(site=site).count()
        if expected == DONE:
            assert response.status_code == 200 and made == 1, site.slug
            assert "no-store" in response["Cache-Control"], site.slug  # the page shows the code once
        elif expected == REFUSED:
            assert response.status_code == 200 and made == 0, site.slug
            assert "site" in response.context["adminform"].form.errors, site.slug
        else:
            assert_outcome(response, LOGIN, site.slug)
            assert made == 0, site.slug


def test_live_rows_follow_a_miner_given_away_or_moved(api, telemetry_farm, django_capture_on_commit_callbacks):
    """Scope is the miner's current site and client, on the live layer too (whichever way it is kept)."""
    from hashinsight.tests.factories import MinerFactory

    farm = telemetry_farm
    MinerFactory(site=farm.site_a, zone=farm.zone_a, customer=farm.client_y)  # client Y still sees site A
    given, moved = farm.miners[("site-a", "client-y")], farm.miners[("site-a", "own")]
    api.force_authenticate(farm.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(f"/api/v1/miners/{given.pk}", {"customer": farm.client_x.pk}, format="json").status_code == 200
        body = {"site": farm.site_b.pk, "zone": farm.zone_b.pk}
        assert api.patch(f"/api/v1/miners/{moved.pk}", body, format="json").status_code == 200
    expected = {
        ("client_x", farm.site_a): {farm.miners[("site-a", "client-x")].serial, given.serial},
        ("client_y", farm.site_a): set(),
        ("siteowner_a", farm.site_a): {farm.miners[("site-a", "client-x")].serial, given.serial},
        ("siteowner_b_ro", farm.site_b): {*(farm.miners[k].serial for k in B_ALL), moved.serial},
    }
    for (username, site), serials in expected.items():
        api.force_authenticate(farm.users[username])
        rows = api.get(f"/api/v1/telemetry/sites/{site.pk}/live", {"limit": 100}).json()["results"]
        assert {r["serial"] for r in rows} == serials, (username, site.slug)


# Commands (issue 8) --------------------------------------------------------------------------------
# Commands belong to CURTAILMENT: owners, admins and site owners FULL; clients, app customers and guests
# none (403 permission_denied on the module check, for reads too). Which commands: those of the sites the
# user sees; a hidden site's command answers 404 as a missing one; a read-only grant reads it, and every
# write on it is 403 site_read_only. The ``command_farm`` holds, per site, three MEDIUM MINER_RESTART
# commands pending approval, all proposed by the owner (so the owner may not decide on them: self_approval;
# but, as their proposer, may cancel them).
OK = 200
COMMANDS_SEEN = {
    "owner": {"A", "B"}, "admin": {"A", "B"}, "siteowner_a": {"A"}, "siteowner_b_ro": {"B"},
    "client_x": FORBIDDEN, "client_y": FORBIDDEN, "customer": FORBIDDEN, "guest": FORBIDDEN,
}  # fmt: skip
NO_MODULE = (403, "permission_denied")
READ_ONLY = (403, "site_read_only")
HIDDEN = (404, "not_found")
SELF = (403, "self_approval")
# Per user and site: what approve, deny and cancel answer (OK: done, and the status moved).
COMMAND_DECISIONS = {
    "owner": {"A": (SELF, SELF, OK), "B": (SELF, SELF, OK)},
    "admin": {"A": (OK, OK, OK), "B": (OK, OK, OK)},
    "siteowner_a": {"A": (OK, OK, OK), "B": (HIDDEN, HIDDEN, HIDDEN)},
    "siteowner_b_ro": {"A": (HIDDEN, HIDDEN, HIDDEN), "B": (READ_ONLY, READ_ONLY, READ_ONLY)},
    "client_x": {"A": (NO_MODULE,) * 3, "B": (NO_MODULE,) * 3},
    "client_y": {"A": (NO_MODULE,) * 3, "B": (NO_MODULE,) * 3},
    "customer": {"A": (NO_MODULE,) * 3, "B": (NO_MODULE,) * 3},
    "guest": {"A": (NO_MODULE,) * 3, "B": (NO_MODULE,) * 3},
}
# Proposing (and previewing) a restart of the operator's own miner at each site: 201 (preview 200), the
# miner of a hidden site is not found (404), a read-only site is refused, roles without CURTAILMENT too.
MISSING_MINER = (404, "miner_not_found")
COMMAND_PROPOSE = {
    "owner": {"A": 201, "B": 201},
    "admin": {"A": 201, "B": 201},
    "siteowner_a": {"A": 201, "B": MISSING_MINER},
    "siteowner_b_ro": {"A": MISSING_MINER, "B": READ_ONLY},
    "client_x": {"A": NO_MODULE, "B": NO_MODULE},
    "client_y": {"A": NO_MODULE, "B": NO_MODULE},
    "customer": {"A": NO_MODULE, "B": NO_MODULE},
    "guest": {"A": NO_MODULE, "B": NO_MODULE},
}


@pytest.fixture
def command_farm(farm):
    from commands import services

    farm.commands = {}
    for key, site in (("A", "site-a"), ("B", "site-b")):
        miner = farm.miners[(site, "own")]
        farm.commands[key] = [
            services.command_propose(actor=farm.users["owner"], type="MINER_RESTART", targets=[miner.pk]).command
            for _ in range(3)
        ]
    return farm


def assert_error(response, expected, what):
    assert (response.status_code, response.json()["error_code"]) == expected, (what, response.content[:300])


@pytest.mark.parametrize("username", USERS)
def test_commands_list_and_detail_follow_scope(api, command_farm, username):
    farm = command_farm
    api.force_authenticate(farm.users[username])
    seen = COMMANDS_SEEN[username]
    listing = api.get("/api/v1/commands", {"limit": 100})
    if seen == FORBIDDEN:
        assert_error(listing, NO_MODULE, "list")
    else:
        assert listing.status_code == 200
        expected = {c.pk for key in seen for c in farm.commands[key]}
        assert {row["id"] for row in listing.json()["results"]} == expected
    for key, commands in farm.commands.items():
        for command in commands:
            detail = api.get(f"/api/v1/commands/{command.pk}")
            if seen == FORBIDDEN:
                assert_error(detail, NO_MODULE, key)
            elif key not in seen:
                assert_hidden(detail, command.pk, key)
            else:
                assert detail.status_code == 200 and detail.json()["id"] == command.pk, key


@pytest.mark.parametrize("username", USERS)
def test_command_decisions_follow_scope(api, command_farm, username):
    from commands.models import Command
    from commands.models import CommandStatus as S

    farm = command_farm
    api.force_authenticate(farm.users[username])
    for key, (to_approve, to_deny, to_cancel) in farm.commands.items():
        actions = (
            ("approve", to_approve, S.APPROVED),
            ("deny", to_deny, S.DENIED),
            ("cancel", to_cancel, S.CANCELLED),
        )
        for (action, command, moved_to), expected in zip(actions, COMMAND_DECISIONS[username][key], strict=True):
            response = api.post(f"/api/v1/commands/{command.pk}/{action}", {"reason": "matrix"}, format="json")
            status = Command.objects.get(pk=command.pk).status
            if expected == OK:
                assert response.status_code == 200, (key, action, response.content[:300])
                assert status == moved_to, (key, action)
                continue
            if expected == HIDDEN:
                assert_hidden(response, command.pk, (key, action))
            else:
                assert_error(response, expected, (key, action))
            assert status == S.PENDING_APPROVAL, (key, action)
            assert not Command.objects.get(pk=command.pk).approvals.exists(), (key, action)


@pytest.mark.parametrize("username", USERS)
def test_command_propose_and_preview_follow_scope(api, farm, username):
    from commands.models import Command

    api.force_authenticate(farm.users[username])
    for key, site in (("A", "site-a"), ("B", "site-b")):
        body = {"type": "MINER_RESTART", "targets": [farm.miners[(site, "own")].pk]}
        before = Command.objects.count()
        preview = api.post("/api/v1/commands/preview", body, format="json")
        assert Command.objects.count() == before, key  # a preview creates nothing
        propose = api.post("/api/v1/commands/propose", body, format="json")
        expected = COMMAND_PROPOSE[username][key]
        if expected == 201:
            assert preview.status_code == 200 and preview.json()["tier"] == "MEDIUM", (key, preview.content[:300])
            assert propose.status_code == 201, (key, propose.content[:300])
            assert Command.objects.count() == before + 1, key
            continue
        assert_error(preview, expected, (key, "preview"))
        assert_error(propose, expected, (key, "propose"))
        assert Command.objects.count() == before, key


# Rolling back a finished command (POST /api/v1/commands/{id}/rollback) is proposing its inverse: the same
# rights as proposing (201 where the user may propose on the site; hidden 404, read-only 403, no module 403).
# Each site holds a HASHING_ENABLE the owner proposed, auto-approved, run and acknowledged by the site's
# device; its inverse is a HIGH HASHING_DISABLE pending approval, which its proposer (the one who asked for
# the rollback) may not approve: 403 self_approval.
CREATED = 201
COMMAND_ROLLBACK = {
    "owner": {"A": CREATED, "B": CREATED},
    "admin": {"A": CREATED, "B": CREATED},
    "siteowner_a": {"A": CREATED, "B": HIDDEN},
    "siteowner_b_ro": {"A": HIDDEN, "B": READ_ONLY},
    "client_x": {"A": NO_MODULE, "B": NO_MODULE},
    "client_y": {"A": NO_MODULE, "B": NO_MODULE},
    "customer": {"A": NO_MODULE, "B": NO_MODULE},
    "guest": {"A": NO_MODULE, "B": NO_MODULE},
}


@pytest.fixture
def completed_farm(farm):
    from commands import dispatch, services
    from telemetry import devices

    farm.completed = {}
    for key, site, slug in (("A", farm.site_a, "site-a"), ("B", farm.site_b, "site-b")):
        miner = farm.miners[(slug, "own")]
        _row, code = devices.enrollment_code_create(site=site)
        device, _token, _secret = devices.device_register(code=code, name=f"edge-{key}", version="1.0.0")
        command = services.command_propose(actor=farm.users["owner"], type="HASHING_ENABLE", targets=[miner.pk]).command
        command = services.command_mark_dispatched(command=command, device=device)
        command, _ = services.command_acknowledge(
            command_id=command.pk, device=device, nonce=dispatch.dispatch_nonce(command),
            results=[{"miner": miner.serial, "status": "ok"}], visible=dispatch.acknowledgeable(device),
        )  # fmt: skip
        assert command.status == "COMPLETED"
        farm.completed[key] = command
    return farm


@pytest.mark.parametrize("username", USERS)
def test_command_rollback_follows_scope_and_its_proposer_may_not_approve_it(api, completed_farm, username):
    from commands.models import Command

    farm = completed_farm
    api.force_authenticate(farm.users[username])
    for key, original in farm.completed.items():
        before = Command.objects.count()
        response = api.post(f"/api/v1/commands/{original.pk}/rollback", {"reason": "matrix"}, format="json")
        expected = COMMAND_ROLLBACK[username][key]
        if expected == CREATED:
            assert response.status_code == 201, (key, response.content[:300])
            body = response.json()
            assert (body["rollback_of"], body["type"], body["status"]) == (
                original.pk, "HASHING_DISABLE", "PENDING_APPROVAL"
            ), key  # fmt: skip
            assert Command.objects.count() == before + 1, key
            own = api.post(f"/api/v1/commands/{body['id']}/approve", {}, format="json")
            assert_error(own, SELF, (key, "approve own rollback"))
            continue
        if expected == HIDDEN:
            assert_hidden(response, original.pk, (key, "rollback"))
        else:
            assert_error(response, expected, (key, "rollback"))
        assert Command.objects.count() == before, key


# The seed's command paths passed their sunset: 410 Gone for everyone (signed in or not), every method,
# pointing at /api/v1/commands, whatever the id (even one of a site the user cannot see).
LEGACY_COMMAND_PATHS = ["/api/sites/{site_a}/commands", "/api/commands/{command_b}", "/api/remote/commands/pending"]


@pytest.mark.parametrize("username", [*USERS, "anonymous"])
def test_legacy_command_paths_are_gone_for_everyone(client, command_farm, username):
    farm = command_farm
    sign_in(client, farm, username)
    for template in LEGACY_COMMAND_PATHS:
        url = template.format(site_a=farm.site_a.pk, command_b=farm.commands["B"][0].pk)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 410, (url, method)
            assert response.json()["error_code"] == "gone", (url, method)
            assert response.json()["details"]["successor"] == "/api/v1/commands", (url, method)
            assert "/api/v1/commands" in response["Link"], (url, method)


# The audit chain on the API (its list, CSV and verification): owners and admins (SYSTEM FULL) only; a
# site owner's SYSTEM READ does not cover it (events carry every site's data); everyone else 403.
AUDIT_API = {
    "owner": 200, "admin": 200, "siteowner_a": 403, "siteowner_b_ro": 403,
    "client_x": 403, "client_y": 403, "customer": 403, "guest": 403,
}  # fmt: skip


@pytest.mark.parametrize("username", USERS)
def test_audit_api_for_owners_and_admins_only(api, command_farm, username):
    from hashinsight.events.models import AuditEvent

    farm = command_farm
    api.force_authenticate(farm.users[username])
    answers = {
        "list": api.get("/api/v1/audit", {"limit": 100}),
        "csv": api.get("/api/v1/audit", {"format": "csv"}),
        "verify": api.get("/api/v1/audit/verify"),
    }
    for name, response in answers.items():
        assert response.status_code == AUDIT_API[username], name
    if AUDIT_API[username] == 200:
        assert AuditEvent.objects.filter(site=farm.site_b).exists()  # or the list below proves nothing
        assert {row["id"] for row in answers["list"].json()["results"]} >= {
            str(e.public_id) for e in AuditEvent.objects.filter(site__in=[farm.site_a, farm.site_b])
        }
        assert answers["csv"]["Content-Type"].startswith("text/csv")
        assert answers["verify"].json()["ok"] is True
    else:
        assert answers["list"].json()["error_code"] == "permission_denied"
        assert "event_hash" not in answers["list"].content.decode()


# The portal's audit page and the admin's audit list (SYSTEM FULL: owners and admins), as in PAGES.
AUDIT_PAGES = {
    #                                      owner admin  so_a  so_b_ro client_x customer guest anonymous
    "/audit/":                             (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/audit/?format=csv":                  (200,  200,  403,  403,   403,     403,     403,  LOGIN),
    "/admin/events/auditevent/":           (200,  200,  403,  403,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/events/auditevent/{event}/change/": (200, 200, 403, 403, LOGIN,   LOGIN,   LOGIN, LOGIN),
    # Commands in the admin, scoped as the API: a hidden site's command is a 404.
    "/admin/commands/command/":            (200,  200,  200,  200,   LOGIN,   LOGIN,   LOGIN, LOGIN),
    "/admin/commands/command/?approval=pending": (200, 200, 200, 200, LOGIN,  LOGIN,   LOGIN, LOGIN),
    "/admin/commands/command/{command_a}/change/": (200, 200, 200, 404, LOGIN, LOGIN,  LOGIN, LOGIN),
    "/admin/commands/command/{command_b}/change/": (200, 200, 404, 200, LOGIN, LOGIN,  LOGIN, LOGIN),
    # The portal's commands pages (CURTAILMENT READ); a hidden site's command is a 404, as in the API.
    "/commands/":                          (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/commands/?format=csv":               (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/commands/new/":                      (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/commands/{command_a}/":              (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/commands/{command_a}/row":           (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/commands/{command_b}/":              (200,  200,  404,  200,   403,     403,     403,  LOGIN),
    # The edge-device list (HOSTING READ, operators only: a hosting client's scope is its own miners).
    "/edge-devices/":                      (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/edge-devices/?format=csv":           (200,  200,  200,  200,   403,     403,     403,  LOGIN),
}  # fmt: skip


@pytest.mark.parametrize("username", PAGE_USERS)
def test_audit_and_command_pages_answer_each_role_as_written(client, command_farm, username):
    from hashinsight.events.models import AuditEvent

    farm = command_farm
    sign_in(client, farm, username)
    event = AuditEvent.objects.order_by("-seq").first()
    for template, answers in AUDIT_PAGES.items():
        url = template.format(event=event.pk, command_a=farm.commands["A"][0].pk, command_b=farm.commands["B"][0].pk)
        assert_outcome(client.get(url), answers[PAGE_USERS.index(username)], url)


@pytest.mark.parametrize("username", ["owner", "admin", "superuser"])
def test_audit_events_cannot_be_changed_or_deleted_in_the_admin(client, command_farm, username):
    """Nobody, a superuser included (the admin's own permissions, not model permissions, refuse)."""
    from hashinsight.events.models import AuditEvent

    farm = command_farm
    user = farm.users["owner" if username == "superuser" else username]
    if username == "superuser":
        type(user).objects.filter(pk=user.pk).update(is_superuser=True, is_staff=True)
        user.refresh_from_db()
    client.force_login(user)
    event = AuditEvent.objects.order_by("-seq").first()
    before = (AuditEvent.objects.count(), event.event_type, event.payload)
    url = f"/admin/events/auditevent/{event.pk}/"
    page = client.get(f"{url}change/")
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert page.context["has_delete_permission"] is False
    assert client.post(f"{url}change/", {"event_type": "forged"}).status_code == 403
    assert client.get(f"{url}delete/").status_code == 403
    assert client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    listing = client.post(
        "/admin/events/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert listing.status_code in (200, 302)
    assert client.get("/admin/events/auditevent/add/").status_code == 403
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (AuditEvent.objects.count(), stored.event_type, stored.payload) == before


# The admin's approve and deny actions on one command per site: DONE for the commands the user may decide
# on; "kept" for one seen read-only, one of a hidden site (not even in the list) or the user's own (the
# owner proposed them all); non-staff go to the login.
ADMIN_COMMAND_DECISIONS = {
    "owner": ("kept", "kept"),
    "admin": (DONE, DONE),
    "siteowner_a": (DONE, "kept"),
    "siteowner_b_ro": ("kept", "kept"),
    "client_x": (LOGIN, LOGIN),
    "anonymous": (LOGIN, LOGIN),
}


@pytest.mark.parametrize("action", ["approve", "deny"])
@pytest.mark.parametrize("username", list(ADMIN_COMMAND_DECISIONS))
def test_admin_command_actions_decide_only_where_allowed(client, command_farm, username, action):
    from commands.models import Command
    from commands.models import CommandStatus as S

    farm = command_farm
    sign_in(client, farm, username)
    ids = [farm.commands["A"][0].pk, farm.commands["B"][0].pk]
    response = client.post(
        "/admin/commands/command/", {"action": action, "_selected_action": ids, "index": 0, "reason": "matrix"}
    )
    outcomes = ADMIN_COMMAND_DECISIONS[username]
    if outcomes[0] == LOGIN:
        assert_outcome(response, LOGIN, username)
    else:
        assert response.status_code == 302, username
    moved_to = S.APPROVED if action == "approve" else S.DENIED
    for pk, expected in zip(ids, outcomes, strict=True):
        command = Command.objects.get(pk=pk)
        if expected == DONE:
            assert command.status == moved_to, (username, pk)
        else:
            assert command.status == S.PENDING_APPROVAL and not command.approvals.exists(), (username, pk)
