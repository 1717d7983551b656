"""factory_boy factories for the whole domain, and ``build_farm`` for permission tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import factory

from hashinsight.accounts.models import User
from hashinsight.accounts.roles import Role
from miners.models import Miner, MinerModel, PortfolioEntry
from sites.models import Customer, Deal, HostingContract, Site, Zone
from sites.services import customer_add_contact, site_grant

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    role = Role.GUEST
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Site {n}")
    slug = factory.Sequence(lambda n: f"site-{n}")
    timezone = "America/Chicago"
    capacity_kw = Decimal("10000")


class ZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Zone

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Zone {n}")
    capacity_kw = Decimal("5000")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    company = factory.Sequence(lambda n: f"Client {n} Ltd.")
    slug = factory.Sequence(lambda n: f"client-{n}")
    hosting_rate_usd_per_kwh = Decimal("0.06")
    contract_start = date(2025, 1, 1)


class MinerModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MinerModel
        django_get_or_create = ["code"]

    vendor = "Bitmain"
    name = "Antminer S21"
    code = "antminer-s21-200t"
    hashrate_ths = Decimal("200")
    power_w = Decimal("3500")


class MinerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Miner

    zone = factory.SubFactory(ZoneFactory)
    site = factory.LazyAttribute(lambda m: m.zone.site)
    model = factory.SubFactory(MinerModelFactory)
    serial = factory.Sequence(lambda n: f"SN{n:08d}")


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal

    title = factory.Sequence(lambda n: f"Deal {n}")
    prospect_company = factory.Sequence(lambda n: f"Prospect {n}")
    owner = factory.SubFactory(UserFactory, role=Role.ADMIN)
    expected_miners = 1000
    expected_mw = Decimal("3.5")
    value = Decimal("250000.00")


class HostingContractFactory(factory.django.DjangoModelFactory):
    """An active all-in contract at 0.06 USD/kWh metered, 97 % SLA, for a client at a site."""

    class Meta:
        model = HostingContract

    number = factory.Sequence(lambda n: f"HC-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    site = factory.SubFactory(SiteFactory)
    status = HostingContract.Status.ACTIVE
    start_date = date(2025, 1, 1)
    rate_per_kwh = Decimal("0.06000")
    sla_uptime_target_pct = Decimal("97.00")
    sla_credit_schedule = factory.LazyFunction(
        lambda: [{"below_pct": "97", "credit_pct": "5"}, {"below_pct": "95", "credit_pct": "10"}]
    )


class PortfolioEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PortfolioEntry

    user = factory.SubFactory(UserFactory, role=Role.CUSTOMER)
    model = factory.SubFactory(MinerModelFactory)
    quantity = 10
    power_price_usd_per_kwh = Decimal("0.05")


def build_farm() -> SimpleNamespace:
    """Site A and B; client X and Y each with miners on both; a site owner granted A only."""
    site_a, site_b = SiteFactory(slug="site-a"), SiteFactory(slug="site-b")
    zone_a, zone_b = ZoneFactory(site=site_a, name="A1"), ZoneFactory(site=site_b, name="B1")
    client_x, client_y = CustomerFactory(slug="client-x"), CustomerFactory(slug="client-y")
    miners = {}
    for zone in (zone_a, zone_b):
        for cust in (client_x, client_y, None):
            key = (zone.site.slug, cust.slug if cust else "own")
            miners[key] = MinerFactory(zone=zone, site=zone.site, customer=cust)
    users = {
        "owner": UserFactory(username="owner", role=Role.OWNER),
        "admin": UserFactory(username="admin", role=Role.ADMIN),
        "siteowner_a": UserFactory(username="siteowner_a", role=Role.MINING_SITE_OWNER),
        "siteowner_b_ro": UserFactory(username="siteowner_b_ro", role=Role.MINING_SITE_OWNER),
        "client_x": UserFactory(username="client_x", role=Role.CLIENT),
        "client_y": UserFactory(username="client_y", role=Role.CLIENT),
        "customer": UserFactory(username="customer", role=Role.CUSTOMER),
        "customer2": UserFactory(username="customer2", role=Role.CUSTOMER),
        "guest": UserFactory(username="guest", role=Role.GUEST),
    }
    site_grant(user=users["siteowner_a"], site=site_a, manage=True)
    site_grant(user=users["siteowner_b_ro"], site=site_b, manage=False)
    customer_add_contact(user=users["client_x"], customer=client_x)
    customer_add_contact(user=users["client_y"], customer=client_y)
    portfolio = {
        "customer": PortfolioEntryFactory(user=users["customer"]),
        "customer2": PortfolioEntryFactory(user=users["customer2"]),
    }
    return SimpleNamespace(
        site_a=site_a, site_b=site_b, zone_a=zone_a, zone_b=zone_b, client_x=client_x, client_y=client_y,
        miners=miners, users=users, portfolio=portfolio,
    )  # fmt: skip
