"""A catalog model's change reaches every summary that counts it: the portfolios holding it, the
sites where its miners stand and the hosting clients owning them; nothing else."""

from types import SimpleNamespace

import pytest

from hashinsight.core import cache as cache_helper
from hashinsight.tests.factories import (
    CustomerFactory,
    MinerFactory,
    MinerModelFactory,
    PortfolioEntryFactory,
    ZoneFactory,
)
from miners.handlers import recalculate_model_uses

pytestmark = pytest.mark.django_db


def version(name: str, pk: int) -> int:
    return cache_helper._version(cache_helper.cache_key(name, id=pk))


def test_model_change_invalidates_its_portfolios_sites_and_clients_only():
    changed = MinerModelFactory(code="changed", name="Changed")
    other = MinerModelFactory(code="other", name="Other")
    client, bystander = CustomerFactory(), CustomerFactory()
    used = MinerFactory(model=changed, customer=client)
    unhosted = MinerFactory(model=changed, zone=ZoneFactory())
    elsewhere = MinerFactory(model=other, customer=bystander)
    holder = PortfolioEntryFactory(model=changed).user
    other_holder = PortfolioEntryFactory(model=other).user
    watched = [
        ("user_portfolio", holder.pk), ("user_portfolio", other_holder.pk),
        ("site_summary", used.site_id), ("site_summary", unhosted.site_id), ("site_summary", elsewhere.site_id),
        ("customer_summary", client.pk), ("customer_summary", bystander.pk),
    ]  # fmt: skip
    before = {key: version(*key) for key in watched}

    recalculate_model_uses([(SimpleNamespace(model_id=changed.pk, action="updated"), None)])

    bumped = {key for key in watched if version(*key) > before[key]}
    assert bumped == {
        ("user_portfolio", holder.pk),
        ("site_summary", used.site_id),
        ("site_summary", unhosted.site_id),
        ("customer_summary", client.pk),
    }
