"""Site, zone and customer services: what each write leaves in the database, re-read after the call,
and that refused writes change nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import CustomerFactory, MinerFactory, SiteFactory, UserFactory, ZoneFactory
from sites import services
from sites.models import Customer, Site, Zone
from sites.selectors import granted_customer_ids, granted_site_ids

pytestmark = pytest.mark.django_db

SITE = {"name": "Lakeside", "slug": "lakeside", "timezone": "Asia/Shanghai", "capacity_kw": Decimal("2500")}


def fresh(user):
    """A new instance of ``user``: grant ids are memoised on the object for one request."""
    return type(user).objects.get(pk=user.pk)


# sites ------------------------------------------------------------------------------------------


def test_site_create_saves_every_field():
    site = services.site_create(actor=UserFactory(role="OWNER"), location="Sichuan", **SITE)
    stored = Site.objects.get(pk=site.pk)
    assert (stored.name, stored.slug, stored.timezone, stored.location) == (
        "Lakeside", "lakeside", "Asia/Shanghai", "Sichuan",
    )  # fmt: skip
    assert stored.capacity_kw == Decimal("2500")


def test_a_site_owner_who_creates_a_site_may_manage_it():
    creator = UserFactory(role="MINING_SITE_OWNER")
    site = services.site_create(actor=creator, **SITE)
    assert granted_site_ids(fresh(creator)) == [site.pk]
    assert granted_site_ids(fresh(creator), manage=True) == [site.pk]


def test_an_owner_who_creates_a_site_gets_no_object_grant():
    owner = UserFactory(role="OWNER")
    services.site_create(actor=owner, **SITE)
    assert granted_site_ids(fresh(owner)) == []


def test_invalid_site_is_refused_and_nothing_written():
    before = Site.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.site_create(actor=UserFactory(role="OWNER"), **{**SITE, "timezone": "Mars/Base"})
    assert "timezone" in refused.value.message_dict
    assert Site.objects.count() == before


def test_site_update_saves():
    site = SiteFactory(location="Old")
    returned = services.site_update(site=site, location="New", capacity_kw=Decimal("42.50"))
    stored = Site.objects.get(pk=site.pk)
    assert (stored.location, stored.capacity_kw) == ("New", Decimal("42.50"))
    assert returned.pk == site.pk


def test_invalid_site_update_changes_nothing():
    site = SiteFactory(capacity_kw=Decimal("100"))
    with pytest.raises(ValidationError):
        services.site_update(site=site, capacity_kw=Decimal("-1"))
    assert Site.objects.get(pk=site.pk).capacity_kw == Decimal("100")


def test_site_with_miners_is_not_deleted():
    miner = MinerFactory()
    with pytest.raises(DomainError) as refused:
        services.site_delete(site=miner.site)
    assert (refused.value.code, refused.value.status) == ("site_not_empty", 409)
    assert refused.value.message == "Move or retire this site's miners before deleting it."
    assert Site.objects.filter(pk=miner.site_id).exists()


def test_empty_site_is_deleted():
    site = SiteFactory()
    services.site_delete(site=site)
    assert not Site.objects.filter(pk=site.pk).exists()


# grants -----------------------------------------------------------------------------------------


def test_site_grant_with_and_without_manage():
    user = UserFactory(role="MINING_SITE_OWNER")
    site = SiteFactory()
    services.site_grant(user=user, site=site, manage=True)
    assert (granted_site_ids(fresh(user)), granted_site_ids(fresh(user), manage=True)) == ([site.pk], [site.pk])
    services.site_grant(user=user, site=site, manage=False)  # a downgrade keeps the view, drops the change
    assert (granted_site_ids(fresh(user)), granted_site_ids(fresh(user), manage=True)) == ([site.pk], [])


def test_site_grant_manages_by_default():
    user = UserFactory(role="MINING_SITE_OWNER")
    site = SiteFactory()
    services.site_grant(user=user, site=site)
    assert granted_site_ids(fresh(user), manage=True) == [site.pk]


def test_only_hosting_clients_become_customer_contacts():
    customer = CustomerFactory()
    for role in ("OWNER", "MINING_SITE_OWNER", "CUSTOMER", "GUEST"):
        user = UserFactory(role=role)
        with pytest.raises(DomainError) as refused:
            services.customer_add_contact(user=user, customer=customer)
        assert refused.value.code == "contact_role"
        assert refused.value.message == "Only users with the hosting client role can be customer contacts."
        assert granted_customer_ids(fresh(user)) == []
    client = UserFactory(role="CLIENT")
    services.customer_add_contact(user=client, customer=customer)
    assert granted_customer_ids(fresh(client)) == [customer.pk]


# zones ------------------------------------------------------------------------------------------


def test_zone_create_saves_in_its_site():
    site = SiteFactory()
    zone = services.zone_create(site=site, name="Hall 1", capacity_kw=Decimal("800"), kind="container")
    stored = Zone.objects.get(pk=zone.pk)
    assert (stored.site_id, stored.name, stored.kind, stored.capacity_kw) == (site.pk, "Hall 1", "container", 800)


def test_zone_names_are_unique_per_site():
    zone = ZoneFactory(name="Hall 1")
    with pytest.raises(ValidationError):
        services.zone_create(site=zone.site, name="Hall 1", capacity_kw=Decimal("1"))
    assert Zone.objects.filter(site=zone.site).count() == 1
    services.zone_create(site=SiteFactory(), name="Hall 1", capacity_kw=Decimal("1"))  # another site: fine


def test_zone_update_saves():
    zone = ZoneFactory(capacity_kw=Decimal("100"))
    services.zone_update(zone=zone, capacity_kw=Decimal("1234.00"), energy_source="hydro")
    stored = Zone.objects.get(pk=zone.pk)
    assert (stored.capacity_kw, stored.energy_source) == (Decimal("1234.00"), "hydro")


def test_empty_zone_moves_to_another_site():
    zone, target = ZoneFactory(), SiteFactory()
    services.zone_update(zone=zone, site=target)
    assert Zone.objects.get(pk=zone.pk).site_id == target.pk
    event = OutboxEvent.objects.get(event_type="zone.changed")
    assert event.payload == {"object_id": zone.pk, "site_id": target.pk, "action": "updated"}


def test_zone_with_miners_stays_in_its_site():
    miner = MinerFactory()
    zone, target = miner.zone, SiteFactory()
    with pytest.raises(DomainError) as refused:
        services.zone_update(zone=zone, site=target, name="Renamed")
    assert (refused.value.code, refused.value.status) == ("zone_not_empty", 409)
    assert refused.value.message == "A zone with miners cannot move to another site."
    stored = Zone.objects.get(pk=zone.pk)
    assert (stored.site_id, stored.name) == (miner.site_id, zone.name)


def test_zone_with_miners_may_restate_its_own_site():
    miner = MinerFactory()
    services.zone_update(zone=miner.zone, site=miner.site, name="Renamed")
    assert Zone.objects.get(pk=miner.zone_id).name == "Renamed"


def test_zone_with_miners_is_not_deleted():
    miner = MinerFactory()
    with pytest.raises(DomainError) as refused:
        services.zone_delete(zone=miner.zone)
    assert (refused.value.code, refused.value.status) == ("zone_not_empty", 409)
    assert refused.value.message == "Move this zone's miners before deleting it."
    assert Zone.objects.filter(pk=miner.zone_id).exists()


def test_empty_zone_is_deleted():
    zone = ZoneFactory()
    services.zone_delete(zone=zone)
    assert not Zone.objects.filter(pk=zone.pk).exists()


# customers --------------------------------------------------------------------------------------


def test_customer_create_saves():
    customer = services.customer_create(
        company="Hash Co", slug="hash-co", hosting_rate_usd_per_kwh=Decimal("0.07"), contract_start=date(2026, 1, 1)
    )
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.company, stored.slug, stored.hosting_rate_usd_per_kwh) == ("Hash Co", "hash-co", Decimal("0.07"))


def test_customer_update_saves():
    customer = CustomerFactory(email="old@example.test")
    services.customer_update(customer=customer, email="new@example.test", contract_end=date(2027, 1, 1))
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.email, stored.contract_end) == ("new@example.test", date(2027, 1, 1))


def test_contract_cannot_end_before_it_starts():
    customer = CustomerFactory(contract_start=date(2025, 1, 1))
    with pytest.raises(ValidationError) as refused:
        services.customer_update(customer=customer, contract_end=date(2024, 12, 31))
    assert "contract_end" in refused.value.message_dict
    assert Customer.objects.get(pk=customer.pk).contract_end is None


def test_customer_with_miners_is_not_deleted():
    customer = CustomerFactory()
    MinerFactory(customer=customer)
    with pytest.raises(DomainError) as refused:
        services.customer_delete(customer=customer)
    assert (refused.value.code, refused.value.status) == ("customer_has_miners", 409)
    assert refused.value.message == "This client still has miners hosted."
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_customer_without_miners_is_deleted():
    customer = CustomerFactory()
    services.customer_delete(customer=customer)
    assert not Customer.objects.filter(pk=customer.pk).exists()


# events and access ------------------------------------------------------------------------------


def published(event_type):
    return [(e.aggregate, e.payload) for e in OutboxEvent.objects.filter(event_type=event_type).order_by("created_at")]


def test_site_and_zone_writes_publish_what_changed_where():
    owner = UserFactory(role="OWNER")
    site = services.site_create(actor=owner, **SITE)
    services.site_update(site=site, location="Moved")
    zone = services.zone_create(site=site, name="Hall", capacity_kw=Decimal("1"))
    zone_id = zone.pk
    services.zone_delete(zone=zone)
    site_id = site.pk
    services.site_delete(site=site)
    assert published("site.changed") == [
        (f"site:{site_id}", {"object_id": site_id, "site_id": site_id, "action": action})
        for action in ("created", "updated", "deleted")
    ]
    assert published("zone.changed") == [
        (f"zone:{zone_id}", {"object_id": zone_id, "site_id": site_id, "action": action})
        for action in ("created", "deleted")
    ]


def test_a_site_owners_new_site_grant_names_them_as_the_actor():
    creator = UserFactory(role="MINING_SITE_OWNER")
    site = services.site_create(actor=creator, **SITE)
    ((aggregate, payload),) = published("site.access_changed")
    assert aggregate == f"site:{site.pk}"
    assert payload["actor_id"] == creator.pk
    assert sorted((a["user_id"], a["codename"]) for a in payload["added"]) == [
        (creator.pk, "change_site"), (creator.pk, "view_site"),
    ]  # fmt: skip


@pytest.mark.parametrize("role", ["MINING_SITE_OWNER", "CLIENT", "CUSTOMER", "GUEST"])
def test_only_user_managers_set_access(role):
    site, customer = SiteFactory(), CustomerFactory()
    grantee, contact = UserFactory(role="MINING_SITE_OWNER"), UserFactory(role="CLIENT")
    actor = UserFactory(role=role)
    for call in (
        lambda: services.site_set_access(site=site, grants={grantee.pk: {"view_site"}}, actor=actor),
        lambda: services.customer_set_access(customer=customer, grants={contact.pk: {"view_customer"}}, actor=actor),
    ):
        with pytest.raises(DomainError) as refused:
            call()
        assert (refused.value.code, refused.value.status) == ("forbidden", 403)
        assert refused.value.message == "Only owners and administrators manage access."
    assert (granted_site_ids(fresh(grantee)), granted_customer_ids(fresh(contact))) == ([], [])


def test_an_admin_sets_a_clients_contacts_and_is_recorded():
    admin, customer, contact = UserFactory(role="ADMIN"), CustomerFactory(), UserFactory(role="CLIENT")
    diff = services.customer_set_access(customer=customer, grants={contact.pk: {"view_customer"}}, actor=admin)
    assert diff.added == [(contact.pk, "view_customer")]
    assert granted_customer_ids(fresh(contact)) == [customer.pk]
    ((aggregate, payload),) = published("customer.access_changed")
    assert (aggregate, payload["actor_id"], payload["user_ids"]) == (f"customer:{customer.pk}", admin.pk, [contact.pk])
    services.customer_set_access(customer=customer, grants={contact.pk: set()}, actor=admin)
    assert granted_customer_ids(fresh(contact)) == []


def test_unknown_permissions_are_refused_by_name():
    admin, site, grantee = UserFactory(role="ADMIN"), SiteFactory(), UserFactory(role="MINING_SITE_OWNER")
    with pytest.raises(DomainError) as refused:
        services.site_set_access(site=site, grants={grantee.pk: {"view_site", "delete_site", "add_site"}}, actor=admin)
    assert (refused.value.code, refused.value.message) == ("unknown_permission", "Unknown permission.")
    assert refused.value.details == {"permissions": ["add_site", "delete_site"]}
    assert granted_site_ids(fresh(grantee)) == []


def test_a_manager_is_always_a_viewer():
    admin, site, grantee = UserFactory(role="ADMIN"), SiteFactory(), UserFactory(role="MINING_SITE_OWNER")
    services.site_set_access(site=site, grants={grantee.pk: {"change_site"}}, actor=admin)
    assert (granted_site_ids(fresh(grantee)), granted_site_ids(fresh(grantee), manage=True)) == ([site.pk], [site.pk])


def test_grants_for_unknown_users_are_refused_and_change_nothing():
    admin, site, grantee = UserFactory(role="ADMIN"), SiteFactory(), UserFactory(role="MINING_SITE_OWNER")
    with pytest.raises(DomainError) as refused:
        services.site_set_access(site=site, grants={grantee.pk: {"view_site"}, 999_999: {"view_site"}}, actor=admin)
    assert (refused.value.code, refused.value.message) == ("unknown_user", "Unknown user.")
    assert refused.value.details == {"users": [999_999]}
    assert granted_site_ids(fresh(grantee)) == []
