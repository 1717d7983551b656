"""Miner selectors: the miner list, portfolios and the scope filter used for counts on sites and zones."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count

from hashinsight.accounts.models import User
from miners import selectors
from sites.models import Site

pytestmark = pytest.mark.django_db


def fresh(farm, key):
    return User.objects.get(pk=farm.users[key].pk)


@pytest.mark.parametrize(
    ("username", "counts"),
    [
        ("owner", {"site-a": 3, "site-b": 3}),
        ("siteowner_a", {"site-a": 3, "site-b": 0}),
        ("client_x", {"site-a": 1, "site-b": 1}),
        ("customer", {"site-a": 0, "site-b": 0}),
    ],
)
def test_counts_on_sites_follow_the_miner_scope(farm, username, counts):
    scope = selectors.miner_scope_q_for(fresh(farm, username))
    rows = Site.objects.annotate(n=Count("miners", filter=scope)).values_list("slug", "n")
    assert dict(rows) == counts


def test_miner_list_follows_the_scope(farm):
    serials = set(selectors.miner_list(user=fresh(farm, "client_x")).values_list("serial", flat=True))
    assert serials == {farm.miners[("site-a", "client-x")].serial, farm.miners[("site-b", "client-x")].serial}
    assert selectors.miner_list(user=fresh(farm, "owner")).count() == 6


def test_a_portfolio_is_its_owners_alone(farm):
    assert list(selectors.portfolio_list(user=fresh(farm, "customer"))) == [farm.portfolio["customer"]]
    assert list(selectors.portfolio_list(user=fresh(farm, "owner"))) == []
    assert list(selectors.portfolio_list(user=AnonymousUser())) == []
