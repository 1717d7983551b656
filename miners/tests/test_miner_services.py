"""Miner and portfolio services: placement rules, what each write leaves in the database (re-read
after the call), the event it publishes, and that refused writes change nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import MinerModelFactory, PortfolioEntryFactory, UserFactory
from miners import services
from miners.models import Miner, MinerModel, PortfolioEntry
from sites.services import site_grant

pytestmark = pytest.mark.django_db


def events(event_type):
    return list(OutboxEvent.objects.filter(event_type=event_type).order_by("created_at"))


def new_miner(farm, actor_key="owner", **fields):
    values = {"site": farm.site_a, "zone": farm.zone_a, "model": MinerModelFactory(), "serial": "NEW-1"} | fields
    return services.miner_create(actor=farm.users[actor_key], **values)


# placement --------------------------------------------------------------------------------------


def test_placement_refuses_a_zone_of_another_site(farm):
    with pytest.raises(DomainError) as refused:
        services.check_placement(actor=farm.users["owner"], site=farm.site_a, zone=farm.zone_b)
    assert (refused.value.code, refused.value.status) == ("zone_not_in_site", 400)
    assert refused.value.message == "The zone does not belong to the miner's site."
    assert refused.value.details == {"zone": farm.zone_b.pk}


def test_placement_refuses_a_read_only_site(farm):
    with pytest.raises(DomainError) as refused:
        services.check_placement(actor=farm.users["siteowner_b_ro"], site=farm.site_b, zone=farm.zone_b)
    assert (refused.value.code, refused.value.status) == ("site_read_only", 403)


def test_placement_accepts_a_managed_site(farm):
    services.check_placement(actor=farm.users["siteowner_a"], site=farm.site_a, zone=farm.zone_a)


# create -----------------------------------------------------------------------------------------


def test_create_saves_seals_identity_and_publishes(farm):
    miner = new_miner(farm, "siteowner_a", customer=farm.client_x, ip="10.1.2.3", password="pw", rack="R7")
    stored = Miner.objects.get(pk=miner.pk)
    assert (stored.site_id, stored.zone_id, stored.customer_id, stored.rack) == (
        farm.site_a.pk, farm.zone_a.pk, farm.client_x.pk, "R7",
    )  # fmt: skip
    assert stored.get_identity() == {"ip": "10.1.2.3", "mac": "", "username": "", "password": "pw"}
    assert "10.1.2.3" not in stored.identity_sealed
    (event,) = events("miner.created")
    assert event.aggregate == f"miner:{miner.pk}"
    assert event.payload == {
        "miner_id": miner.pk, "site_id": farm.site_a.pk, "customer_id": farm.client_x.pk,
        "model_id": stored.model_id, "serial": "NEW-1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "site", "zone", "code"),
    [
        ("siteowner_b_ro", "site_b", "zone_b", "site_read_only"),
        ("owner", "site_a", "zone_b", "zone_not_in_site"),
    ],
)
def test_refused_create_writes_nothing(farm, actor, site, zone, code):
    before = (Miner.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(DomainError) as refused:
        new_miner(farm, actor, site=getattr(farm, site), zone=getattr(farm, zone))
    assert refused.value.code == code
    assert (Miner.objects.count(), OutboxEvent.objects.count()) == before


def test_duplicate_serial_is_a_conflict(farm):
    existing = farm.miners[("site-a", "own")]
    before = Miner.objects.count()
    with pytest.raises(DomainError) as refused:
        new_miner(farm, serial=existing.serial)
    assert (refused.value.code, refused.value.status) == ("duplicate_serial", 409)
    assert refused.value.message == "A miner with this serial number already exists."
    assert Miner.objects.count() == before


def test_invalid_miner_is_refused(farm):
    before = Miner.objects.count()
    with pytest.raises(ValidationError):
        new_miner(farm, status="exploded")
    assert Miner.objects.count() == before
    assert events("miner.created") == []


# update -----------------------------------------------------------------------------------------


def test_update_saves_and_publishes_old_and_new_placement(farm):
    miner = farm.miners[("site-a", "client-x")]
    services.miner_update(
        actor=farm.users["owner"], miner=miner, site=farm.site_b, zone=farm.zone_b, customer=farm.client_y,
        firmware="fw-2",
    )  # fmt: skip
    stored = Miner.objects.get(pk=miner.pk)
    assert (stored.site_id, stored.zone_id, stored.customer_id, stored.firmware) == (
        farm.site_b.pk, farm.zone_b.pk, farm.client_y.pk, "fw-2",
    )  # fmt: skip
    (event,) = events("miner.updated")
    assert event.aggregate == f"miner:{miner.pk}"
    assert {k: event.payload[k] for k in ("miner_id", "site_id", "old_site_id", "customer_id", "old_customer_id")} == {
        "miner_id": miner.pk, "site_id": farm.site_b.pk, "old_site_id": farm.site_a.pk,
        "customer_id": farm.client_y.pk, "old_customer_id": farm.client_x.pk,
    }  # fmt: skip


def test_a_new_serial_keeps_the_identity_readable(farm):
    miner = new_miner(farm, ip="10.9.9.9", username="root")
    services.miner_update(actor=farm.users["owner"], miner=miner, serial="NEW-2")
    stored = Miner.objects.get(pk=miner.pk)
    assert stored.serial == "NEW-2"
    assert stored.get_identity() == {"ip": "10.9.9.9", "mac": "", "username": "root", "password": ""}


def test_identity_fields_merge_with_the_sealed_ones(farm):
    miner = new_miner(farm, ip="10.9.9.9", username="root")
    services.miner_update(actor=farm.users["owner"], miner=miner, password="new-pw")
    identity = Miner.objects.get(pk=miner.pk).get_identity()
    assert identity == {"ip": "10.9.9.9", "mac": "", "username": "root", "password": "new-pw"}


def test_update_to_anothers_serial_is_a_conflict(farm):
    miner, other = farm.miners[("site-a", "own")], farm.miners[("site-b", "own")]
    with pytest.raises(DomainError) as refused:
        services.miner_update(actor=farm.users["owner"], miner=miner, serial=other.serial)
    assert (refused.value.code, refused.value.status) == ("duplicate_serial", 409)
    assert refused.value.message == "A miner with this serial number already exists."
    assert Miner.objects.get(pk=miner.pk).serial == miner.serial
    assert events("miner.updated") == []


def test_restating_its_own_serial_is_fine(farm):
    miner = farm.miners[("site-a", "own")]
    services.miner_update(actor=farm.users["owner"], miner=miner, serial=miner.serial, rack="R2")
    assert Miner.objects.get(pk=miner.pk).rack == "R2"


@pytest.mark.parametrize(
    ("miner_key", "target"),
    [
        (("site-a", "own"), "site_b"),  # into a site seen read-only
        (("site-b", "own"), "site_a"),  # out of one
    ],
)
def test_moves_across_a_read_only_site_are_refused(farm, miner_key, target):
    user = farm.users["siteowner_a"]
    site_grant(user=user, site=farm.site_b, manage=False)
    miner = farm.miners[miner_key]
    site = getattr(farm, target)
    zone = farm.zone_a if site == farm.site_a else farm.zone_b
    with pytest.raises(DomainError) as refused:
        services.miner_update(actor=type(user).objects.get(pk=user.pk), miner=miner, site=site, zone=zone)
    assert (refused.value.code, refused.value.status) == ("site_read_only", 403)
    assert Miner.objects.get(pk=miner.pk).site_id == miner.site_id
    assert events("miner.updated") == []


def test_a_zone_from_another_site_is_refused_on_update(farm):
    miner = farm.miners[("site-a", "own")]
    with pytest.raises(DomainError) as refused:
        services.miner_update(actor=farm.users["owner"], miner=miner, zone=farm.zone_b)
    assert refused.value.code == "zone_not_in_site"
    assert Miner.objects.get(pk=miner.pk).zone_id == farm.zone_a.pk


# delete -----------------------------------------------------------------------------------------


def test_delete_removes_and_publishes(farm):
    miner = farm.miners[("site-a", "client-x")]
    services.miner_delete(actor=farm.users["siteowner_a"], miner=miner)
    assert not Miner.objects.filter(pk=miner.pk).exists()
    (event,) = events("miner.deleted")
    assert (event.payload["miner_id"], event.payload["site_id"], event.payload["customer_id"]) == (
        miner.pk, farm.site_a.pk, farm.client_x.pk,
    )  # fmt: skip
    assert (event.payload["old_site_id"], event.payload["old_customer_id"]) == (farm.site_a.pk, farm.client_x.pk)


def test_delete_in_a_read_only_site_is_refused(farm):
    miner = farm.miners[("site-b", "own")]
    with pytest.raises(DomainError) as refused:
        services.miner_delete(actor=farm.users["siteowner_b_ro"], miner=miner)
    assert refused.value.code == "site_read_only"
    assert Miner.objects.filter(pk=miner.pk).exists()
    assert events("miner.deleted") == []


# portfolio --------------------------------------------------------------------------------------


def test_portfolio_entry_lifecycle_publishes_each_change():
    user = UserFactory(role="CUSTOMER")
    model = MinerModelFactory()
    entry = services.portfolio_entry_create(
        user=user, model=model, quantity=4, power_price_usd_per_kwh=Decimal("0.045"), label="rack 1"
    )
    stored = PortfolioEntry.objects.get(pk=entry.pk)
    assert (stored.user_id, stored.quantity, stored.power_price_usd_per_kwh, stored.label) == (
        user.pk, 4, Decimal("0.045"), "rack 1",
    )  # fmt: skip
    services.portfolio_entry_update(entry=entry, quantity=9)
    assert PortfolioEntry.objects.get(pk=entry.pk).quantity == 9
    services.portfolio_entry_delete(entry=entry)
    assert not PortfolioEntry.objects.filter(pk=entry.pk).exists()
    published = events("portfolio.changed")
    assert [(e.aggregate, e.payload) for e in published] == [(f"user:{user.pk}", {"user_id": user.pk})] * 3


def test_invalid_portfolio_entry_writes_nothing():
    user = UserFactory(role="CUSTOMER")
    with pytest.raises(ValidationError):
        services.portfolio_entry_create(user=user, model=MinerModelFactory(), quantity=-1)
    assert not PortfolioEntry.objects.filter(user=user).exists()
    assert events("portfolio.changed") == []


def test_invalid_portfolio_update_changes_nothing():
    entry = PortfolioEntryFactory(quantity=10)
    with pytest.raises(ValidationError):
        services.portfolio_entry_update(entry=entry, quantity=-5)
    assert PortfolioEntry.objects.get(pk=entry.pk).quantity == 10
    assert events("portfolio.changed") == []


def test_moving_an_entry_to_another_user_changes_both_portfolios():
    entry = PortfolioEntryFactory()
    old_user, new_user = entry.user, UserFactory(role="CUSTOMER")
    services.portfolio_entry_update(entry=entry, user=new_user)
    assert PortfolioEntry.objects.get(pk=entry.pk).user_id == new_user.pk
    assert sorted(e.payload["user_id"] for e in events("portfolio.changed")) == sorted([old_user.pk, new_user.pk])


# catalog ----------------------------------------------------------------------------------------


def test_a_model_in_use_is_not_deleted(farm):
    in_use = farm.miners[("site-a", "own")].model
    in_a_portfolio = PortfolioEntryFactory(model=MinerModelFactory(code="portfolio-only", name="Portfolio only")).model
    for model in (in_use, in_a_portfolio):
        with pytest.raises(DomainError) as refused:
            services.miner_model_delete(actor=farm.users["owner"], miner_model=model)
        assert (refused.value.code, refused.value.status) == ("model_in_use", 409)
        assert refused.value.message == "Miners of this model exist; it cannot be deleted."
        assert MinerModel.objects.filter(pk=model.pk).exists()
    assert events("miner_model.changed") == []


def test_an_unused_model_is_deleted_and_published(farm):
    model = MinerModelFactory(code="unused-model", name="Unused")
    services.miner_model_delete(actor=farm.users["owner"], miner_model=model)
    assert not MinerModel.objects.filter(pk=model.pk).exists()
    (event,) = events("miner_model.changed")
    assert event.payload == {"model_id": model.pk, "action": "deleted"}
