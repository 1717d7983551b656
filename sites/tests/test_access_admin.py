"""The admin 'Access' page of sites and hosting clients, the service behind it, the scoped list
filters, and admin saves of sites, zones and clients going through their services."""

from unittest import mock

import pytest

from hashinsight.accounts.roles import Role
from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import CustomerFactory, MinerFactory, UserFactory, ZoneFactory
from sites import services
from sites.models import CustomerUserObjectPermission, Site, SiteUserObjectPermission, Zone
from sites.selectors import granted_customer_ids, granted_site_ids

pytestmark = pytest.mark.django_db


def site_grants(site) -> set[tuple[str, str]]:
    rows = SiteUserObjectPermission.objects.filter(content_object=site)
    return set(rows.values_list("user__username", "permission__codename"))


def customer_grants(customer) -> set[str]:
    rows = CustomerUserObjectPermission.objects.filter(content_object=customer, permission__codename="view_customer")
    return set(rows.values_list("user__username", flat=True))


def access_events(event_type="site.access_changed"):
    return list(OutboxEvent.objects.filter(event_type=event_type).order_by("created_at"))


def fresh(user):
    # The selectors cache grant ids on the user object for one request; re-read it.
    return type(user).objects.get(pk=user.pk)


@pytest.fixture(autouse=True)
def _farm_events_out_of_the_way(farm):
    # build_farm grants through the services, which publish; these tests count only their own events.
    OutboxEvent.objects.all().delete()


@pytest.fixture
def names(farm):
    # Distinct names, so "not in the page" cannot be fooled by one name containing another.
    Site.objects.filter(pk=farm.site_a.pk).update(name="Amber Valley")
    Site.objects.filter(pk=farm.site_b.pk).update(name="Hidden Ridge")
    return {"visible": "Amber Valley", "hidden": "Hidden Ridge"}


# --- who may open the page -------------------------------------------------------------------------


def test_a_site_owner_cannot_open_access_and_a_hidden_site_is_404(client, farm):
    client.force_login(farm.users["siteowner_a"])
    assert client.get(f"/admin/sites/site/{farm.site_a.pk}/permissions/").status_code == 403
    assert client.get(f"/admin/sites/site/{farm.site_b.pk}/permissions/").status_code == 404
    assert client.get("/admin/sites/site/999999/permissions/").status_code == 404
    assert client.get("/admin/sites/site/not-a-number/permissions/").status_code == 404
    before = site_grants(farm.site_a)
    response = client.post(
        f"/admin/sites/site/{farm.site_a.pk}/permissions/",
        {"shown": [farm.users["siteowner_a"].pk], f"perm_{farm.users['siteowner_a'].pk}": []},
    )
    assert response.status_code == 403
    assert site_grants(farm.site_a) == before


def test_the_access_button_is_shown_to_user_managers_only(client, farm):
    client.force_login(farm.users["siteowner_a"])
    page = client.get(f"/admin/sites/site/{farm.site_a.pk}/change/").content.decode()
    assert "/permissions/" not in page
    client.force_login(farm.users["admin"])
    page = client.get(f"/admin/sites/site/{farm.site_a.pk}/change/").content.decode()
    assert f"/admin/sites/site/{farm.site_a.pk}/permissions/" in page
    page = client.get(f"/admin/sites/customer/{farm.client_x.pk}/change/").content.decode()
    assert f"/admin/sites/customer/{farm.client_x.pk}/permissions/" in page


def test_the_page_lists_site_owners_with_their_grants_ticked(client, farm):
    client.force_login(farm.users["admin"])
    response = client.get(f"/admin/sites/site/{farm.site_a.pk}/permissions/")
    assert response.status_code == 200
    page = response.content.decode()
    owner_a, owner_b = farm.users["siteowner_a"].pk, farm.users["siteowner_b_ro"].pk
    assert f'id="perm_{owner_a}_view_site" checked' in page
    assert f'id="perm_{owner_a}_change_site" checked' in page
    assert f'id="perm_{owner_b}_view_site" checked' not in page  # listed (a site owner) but not granted here
    assert f'id="perm_{owner_b}_view_site"' in page
    # Only site owners are offered: clients, customers and the all-seeing roles are not.
    for other in ("client_x", "customer", "owner", "admin"):
        assert f'value="{farm.users[other].pk}"' not in page


# --- saving --------------------------------------------------------------------------------------


def test_saving_applies_the_diff_publishes_and_notifies(client, farm):
    owner_a, owner_b = farm.users["siteowner_a"], farm.users["siteowner_b_ro"]
    client.force_login(farm.users["admin"])
    with mock.patch("sites.services.notify_access_changed") as notify:
        response = client.post(
            f"/admin/sites/site/{farm.site_a.pk}/permissions/",
            {
                "shown": [owner_a.pk, owner_b.pk],
                f"perm_{owner_a.pk}": ["view_site"],  # change_site unticked: read-only from now on
                f"perm_{owner_b.pk}": ["view_site", "change_site"],
            },
        )
    assert response.status_code == 302
    assert site_grants(farm.site_a) == {
        ("siteowner_a", "view_site"),
        ("siteowner_b_ro", "view_site"),
        ("siteowner_b_ro", "change_site"),
    }
    assert farm.site_a.pk not in granted_site_ids(fresh(owner_a), manage=True)
    assert farm.site_a.pk in granted_site_ids(fresh(owner_b), manage=True)
    [event] = access_events()
    assert event.payload["object_id"] == farm.site_a.pk
    assert event.payload["actor_id"] == farm.users["admin"].pk
    assert event.payload["removed"] == [{"user_id": owner_a.pk, "codename": "change_site"}]
    assert sorted(g["codename"] for g in event.payload["added"]) == ["change_site", "view_site"]
    assert event.payload["user_ids"] == sorted([owner_a.pk, owner_b.pk])
    notify.assert_called_once_with(*sorted([owner_a.pk, owner_b.pk]))


def test_unticking_everything_revokes_and_the_site_disappears_for_them(client, farm):
    owner_a = farm.users["siteowner_a"]
    client.force_login(farm.users["admin"])
    response = client.post(f"/admin/sites/site/{farm.site_a.pk}/permissions/", {"shown": [owner_a.pk]})
    assert response.status_code == 302
    assert site_grants(farm.site_a) == set()
    client.force_login(owner_a)
    assert client.get(f"/admin/sites/site/{farm.site_a.pk}/change/").status_code == 404


def test_the_picker_adds_a_user(client, farm):
    newcomer = UserFactory(username="newcomer", role=Role.MINING_SITE_OWNER)
    client.force_login(farm.users["admin"])
    response = client.post(
        f"/admin/sites/site/{farm.site_b.pk}/permissions/", {"add_user": newcomer.pk, "add_perm": ["view_site"]}
    )
    assert response.status_code == 302
    assert ("newcomer", "view_site") in site_grants(farm.site_b)
    assert ("newcomer", "change_site") not in site_grants(farm.site_b)
    assert ("siteowner_b_ro", "view_site") in site_grants(farm.site_b)  # users not listed keep theirs


def test_with_many_candidates_the_picker_is_a_username_field(client, farm, monkeypatch):
    from sites import admin as sites_admin

    monkeypatch.setattr(sites_admin, "LISTED_CANDIDATES", 1)
    monkeypatch.setattr(sites_admin, "PICKER_MAX", 2)
    for n in range(4):
        UserFactory(username=f"candidate{n}", role=Role.MINING_SITE_OWNER)
    client.force_login(farm.users["admin"])
    url = f"/admin/sites/site/{farm.site_b.pk}/permissions/"
    html = client.get(url).content.decode()
    assert 'name="add_username"' in html and 'name="add_user"' not in html  # no <select> of every user
    assert client.post(url, {"add_username": "candidate3", "add_perm": ["view_site"]}).status_code == 302
    assert ("candidate3", "view_site") in site_grants(farm.site_b)
    before = site_grants(farm.site_b)
    refused = client.post(url, {"add_username": "nobody-by-this-name", "add_perm": ["view_site"]})
    assert refused.status_code == 400 and site_grants(farm.site_b) == before


def test_a_picked_user_with_nothing_ticked_is_refused_and_nothing_changes(client, farm):
    newcomer = UserFactory(username="newcomer", role=Role.MINING_SITE_OWNER)
    owner_a = farm.users["siteowner_a"]
    before = site_grants(farm.site_a)
    client.force_login(farm.users["admin"])
    response = client.post(
        f"/admin/sites/site/{farm.site_a.pk}/permissions/",
        {"shown": [owner_a.pk], "add_user": newcomer.pk},  # would also revoke owner_a, if it went through
    )
    assert response.status_code == 400
    assert "Tick what the user you add may do." in response.content.decode()
    assert site_grants(farm.site_a) == before
    assert access_events() == []


@pytest.mark.parametrize("role", [Role.CLIENT, Role.CUSTOMER, Role.ADMIN])
def test_only_site_owners_can_be_granted_a_site(client, farm, role):
    intruder = UserFactory(username="intruder", role=role)
    client.force_login(farm.users["admin"])
    response = client.post(
        f"/admin/sites/site/{farm.site_a.pk}/permissions/",
        {"shown": [intruder.pk], f"perm_{intruder.pk}": ["view_site"]},  # a forged row
    )
    assert response.status_code == 400
    assert ("intruder", "view_site") not in site_grants(farm.site_a)
    assert access_events() == []


@pytest.mark.parametrize(
    "data",
    [
        {"shown": ["abc"]},
        {"add_user": "abc", "add_perm": ["view_site"]},
        {"add_user": "999999", "add_perm": ["view_site"]},
    ],
)
def test_bad_user_ids_are_refused(client, farm, data):
    before = site_grants(farm.site_a)
    client.force_login(farm.users["admin"])
    assert client.post(f"/admin/sites/site/{farm.site_a.pk}/permissions/", data).status_code == 400
    assert site_grants(farm.site_a) == before


def test_an_unknown_permission_is_refused(client, farm):
    owner_a = farm.users["siteowner_a"]
    before = site_grants(farm.site_a)
    client.force_login(farm.users["admin"])
    response = client.post(
        f"/admin/sites/site/{farm.site_a.pk}/permissions/",
        {"shown": [owner_a.pk], f"perm_{owner_a.pk}": ["view_site", "delete_site"]},
    )
    assert response.status_code == 400
    assert site_grants(farm.site_a) == before


def test_customer_contacts_are_set_on_the_client_page(client, farm):
    newcomer = UserFactory(username="client_new", role=Role.CLIENT)
    client.force_login(farm.users["owner"])
    page = client.get(f"/admin/sites/customer/{farm.client_x.pk}/permissions/").content.decode()
    assert f'id="perm_{farm.users["client_x"].pk}_view_customer" checked' in page
    assert f'value="{farm.users["siteowner_a"].pk}"' not in page  # only hosting clients are offered
    response = client.post(
        f"/admin/sites/customer/{farm.client_x.pk}/permissions/",
        {
            "shown": [farm.users["client_x"].pk, newcomer.pk],
            f"perm_{newcomer.pk}": ["view_customer"],  # client_x unticked
        },
    )
    assert response.status_code == 302
    assert customer_grants(farm.client_x) == {"client_new"}
    assert farm.client_x.pk in granted_customer_ids(fresh(newcomer))
    assert farm.client_x.pk not in granted_customer_ids(fresh(farm.users["client_x"]))
    [event] = access_events("customer.access_changed")
    assert event.payload["object_id"] == farm.client_x.pk


# --- the service on its own --------------------------------------------------------------------


def test_only_user_managers_may_set_access(farm):
    with pytest.raises(DomainError) as refused:
        services.site_set_access(
            site=farm.site_a, grants={farm.users["siteowner_b_ro"].pk: {"view_site"}}, actor=farm.users["siteowner_a"]
        )
    assert refused.value.status == 403
    assert ("siteowner_b_ro", "view_site") not in site_grants(farm.site_a)


def test_change_implies_view_and_a_repeat_changes_nothing(farm):
    newcomer = UserFactory(username="newcomer", role=Role.MINING_SITE_OWNER)
    grants = {newcomer.pk: {"change_site"}}
    diff = services.site_set_access(site=farm.site_a, grants=grants, actor=farm.users["owner"])
    assert sorted(diff.added) == [(newcomer.pk, "change_site"), (newcomer.pk, "view_site")]
    assert {c for u, c in site_grants(farm.site_a) if u == "newcomer"} == {"view_site", "change_site"}
    again = services.site_set_access(site=farm.site_a, grants=grants, actor=farm.users["owner"])
    assert again.added == [] and again.removed == []
    assert len(access_events()) == 1


def test_revoking_from_a_user_whose_role_changed_is_allowed(farm):
    # A site owner who became a client keeps a stale grant until someone removes it: removal is never refused.
    owner_a = farm.users["siteowner_a"]
    type(owner_a).objects.filter(pk=owner_a.pk).update(role=Role.CLIENT)
    services.site_set_access(site=farm.site_a, grants={owner_a.pk: set()}, actor=farm.users["owner"])
    assert site_grants(farm.site_a) == set()


# --- scoped list filters (the "By site" leak) ----------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/miners/miner/", "/admin/sites/zone/", "/admin/telemetry/alert/"])
def test_a_site_owners_list_filters_name_only_their_sites(client, farm, names, url):
    from telemetry import services as alerts

    for key in (("site-a", "own"), ("site-b", "own")):
        miner = farm.miners[key]
        alerts.alert_raise(site=miner.site, miner=miner, alert_type="fan", severity="warning", message="m")
    ZoneFactory(site=farm.site_a, name="A2")  # two choices on the visible side, so the filter is drawn
    client.force_login(farm.users["siteowner_a"])
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert names["visible"] in page
    assert names["hidden"] not in page
    client.force_login(farm.users["owner"])
    assert names["hidden"] in client.get(url).content.decode()  # the filter is there, and scoped


def test_a_site_owners_client_and_zone_filters_are_scoped(client, farm, names):
    elsewhere = CustomerFactory(company="Elsewhere Mining Co")
    MinerFactory(zone=farm.zone_b, site=farm.site_b, customer=elsewhere)
    Zone.objects.filter(pk=farm.zone_b.pk).update(name="Ridge Hall")
    client.force_login(farm.users["siteowner_a"])
    page = client.get("/admin/miners/miner/").content.decode()
    assert "Elsewhere Mining Co" not in page
    assert "Ridge Hall" not in page
    assert farm.client_x.company in page  # has miners on site A
    client.force_login(farm.users["owner"])
    page = client.get("/admin/miners/miner/").content.decode()
    assert "Elsewhere Mining Co" in page and "Ridge Hall" in page


# --- admin saves of sites, zones and clients go through the services --------------------------------


def test_admin_site_and_zone_saves_publish(client, farm):
    client.force_login(farm.users["siteowner_a"])
    site = farm.site_a
    data = {
        "name": "Amber Valley II", "slug": site.slug, "location": "", "timezone": site.timezone,
        "capacity_kw": "12000", "power_price_usd_per_kwh": "0.05",
        "zones-TOTAL_FORMS": "2", "zones-INITIAL_FORMS": "1", "zones-MIN_NUM_FORMS": "0", "zones-MAX_NUM_FORMS": "1000",
        "zones-0-id": farm.zone_a.pk, "zones-0-site": site.pk, "zones-0-name": "A1 renamed", "zones-0-kind": "room",
        "zones-0-capacity_kw": "5000", "zones-0-energy_source": "grid",
        "zones-1-site": site.pk, "zones-1-name": "A-new", "zones-1-kind": "container", "zones-1-capacity_kw": "800",
        "zones-1-energy_source": "hydro",
    }  # fmt: skip
    response = client.post(f"/admin/sites/site/{site.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"]
    assert Site.objects.get(pk=site.pk).name == "Amber Valley II"
    assert Zone.objects.get(pk=farm.zone_a.pk).name == "A1 renamed"
    new_zone = Zone.objects.get(site=site, name="A-new")
    assert [e.payload["action"] for e in OutboxEvent.objects.filter(event_type="site.changed")] == ["updated"]
    zone_events = OutboxEvent.objects.filter(event_type="zone.changed").order_by("created_at")
    assert sorted((e.payload["object_id"], e.payload["action"]) for e in zone_events) == sorted(
        [(farm.zone_a.pk, "updated"), (new_zone.pk, "created")]
    )


def test_admin_customer_delete_goes_through_the_service(client, farm):
    empty = CustomerFactory()
    client.force_login(farm.users["admin"])
    assert client.post(f"/admin/sites/customer/{empty.pk}/delete/", {"post": "yes"}).status_code == 302
    [event] = OutboxEvent.objects.filter(event_type="customer.changed")
    assert event.payload == {"object_id": empty.pk, "site_id": None, "action": "deleted"}


def test_a_site_owner_creating_a_site_through_the_service_is_granted_it(farm):
    owner_a = farm.users["siteowner_a"]
    site = services.site_create(actor=owner_a, name="Fresh", slug="fresh", capacity_kw=1)
    assert {c for u, c in site_grants(site) if u == "siteowner_a"} == {"view_site", "change_site"}
    assert [e.payload["action"] for e in OutboxEvent.objects.filter(event_type="site.changed")] == ["created"]
    assert access_events()[-1].payload["object_id"] == site.pk
