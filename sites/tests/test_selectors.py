"""Site selectors: each role's scope, grants held directly or through a group, read-only versus
manage grants, and a constant number of queries. Expectations are written out per user of the farm."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from hashinsight.accounts.models import User
from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import CustomerFactory, MinerFactory, SiteFactory, UserFactory, ZoneFactory
from miners.models import Miner
from sites import selectors
from sites.models import CUSTOMER_VIEW, SITE_MANAGE, SITE_VIEW
from sites.services import customer_add_contact

pytestmark = pytest.mark.django_db


def fresh(farm, key):
    """A new user object, as each request gets (grant ids are memoised on the object)."""
    return User.objects.get(pk=farm.users[key].pk)


def slugs(qs):
    return sorted(qs.values_list("slug", flat=True))


# Per user: sites, zones (by name) and customers they see; the sites they may change (None = all).
EXPECTED = {
    "owner": (["site-a", "site-b"], ["A1", "B1"], ["client-x", "client-y"], None),
    "admin": (["site-a", "site-b"], ["A1", "B1"], ["client-x", "client-y"], None),
    "siteowner_a": (["site-a"], ["A1"], ["client-x", "client-y"], ["site-a"]),
    "siteowner_b_ro": (["site-b"], ["B1"], ["client-x", "client-y"], []),
    "client_x": (["site-a", "site-b"], ["A1", "B1"], ["client-x"], []),
    "customer": ([], [], [], []),
    "guest": ([], [], [], []),
}


@pytest.mark.parametrize("username", EXPECTED)
def test_each_user_sees_and_manages_exactly_this(farm, username):
    sites, zones, customers, manageable = EXPECTED[username]
    user = fresh(farm, username)
    assert slugs(selectors.site_list(user=user)) == sites
    assert sorted(selectors.zone_list(user=user).values_list("name", flat=True)) == zones
    assert slugs(selectors.customer_list(user=user)) == customers
    ids = selectors.manageable_site_ids(user=user)
    by_slug = {"site-a": farm.site_a.pk, "site-b": farm.site_b.pk}
    assert ids == (None if manageable is None else [by_slug[s] for s in manageable])
    for slug, pk in by_slug.items():
        may = manageable is None or slug in manageable
        assert selectors.site_is_manageable(user=user, site_id=pk) is may
        if may:
            selectors.require_site_manageable(user=user, site_id=pk)
        else:
            with pytest.raises(DomainError) as refused:
                selectors.require_site_manageable(user=user, site_id=pk)
            assert (refused.value.code, refused.value.status) == ("site_read_only", 403)


@pytest.mark.parametrize(
    ("username", "serials"),
    [
        ("owner", {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own"),
                   ("site-b", "client-x"), ("site-b", "client-y"), ("site-b", "own")}),
        ("siteowner_a", {("site-a", "client-x"), ("site-a", "client-y"), ("site-a", "own")}),
        ("client_x", {("site-a", "client-x"), ("site-b", "client-x")}),
        ("customer", set()),
        ("guest", set()),
    ],
)  # fmt: skip
def test_miner_scope_filter(farm, username, serials):
    q = selectors.miner_scope_q(fresh(farm, username))
    qs = Miner.objects.all() if q is None else Miner.objects.filter(q)
    assert set(qs.values_list("serial", flat=True)) == {farm.miners[k].serial for k in serials}
    assert (q is None) is (username == "owner")


def test_prefixed_scope_filters_through_a_join(farm):
    q = selectors.miner_scope_q(fresh(farm, "siteowner_a"), prefix="miner__")
    assert q == selectors.Scope("sites", (farm.site_a.pk,)).q(prefix="miner__")
    assert q.children == [("miner__site_id__in", (farm.site_a.pk,))]
    client_q = selectors.miner_scope_q(fresh(farm, "client_x"), prefix="miner__")
    assert client_q.children == [("miner__customer_id__in", (farm.client_x.pk,))]
    nobody = selectors.miner_scope_q(fresh(farm, "guest"), prefix="miner__")
    assert nobody.children == [("miner__pk__in", [])]


def test_scope_allows_one_row_by_the_same_rule(farm):
    site_owner = selectors.scope_of(fresh(farm, "siteowner_a"))
    assert site_owner.allows(site_id=farm.site_a.pk, customer_id=None)
    assert not site_owner.allows(site_id=farm.site_b.pk, customer_id=farm.client_x.pk)
    client = selectors.scope_of(fresh(farm, "client_x"))
    assert client.allows(site_id=farm.site_b.pk, customer_id=farm.client_x.pk)
    assert not client.allows(site_id=farm.site_a.pk, customer_id=farm.client_y.pk)
    assert not client.allows(site_id=farm.site_a.pk, customer_id=None)  # the operator's own miners
    assert selectors.scope_of(fresh(farm, "admin")).allows(site_id=None, customer_id=None)
    assert not selectors.scope_of(fresh(farm, "customer")).allows(site_id=farm.site_a.pk, customer_id=None)


def test_a_disabled_user_sees_nothing(farm):
    user = fresh(farm, "owner")
    user.is_active = False
    assert selectors.scope_of(user).kind == "none"
    assert not selectors.site_list(user=user).exists()
    assert selectors.site_is_manageable(user=user, site_id=farm.site_a.pk) is False


def test_grants_through_a_group_count_like_direct_ones():
    site, other = SiteFactory(), SiteFactory()
    MinerFactory(zone=ZoneFactory(site=other), site=other)
    group = Group.objects.create(name="ops-north")
    assign_perm(SITE_VIEW, group, site)
    assign_perm(SITE_MANAGE, group, site)
    member = UserFactory(role="MINING_SITE_OWNER")
    member.groups.add(group)
    user = User.objects.get(pk=member.pk)
    assert selectors.granted_site_ids(user) == [site.pk]
    assert selectors.granted_site_ids(user, manage=True) == [site.pk]
    assert list(selectors.site_list(user=user)) == [site]
    assert selectors.site_is_manageable(user=user, site_id=site.pk)
    assert not selectors.site_is_manageable(user=user, site_id=other.pk)


def test_customer_grants_through_a_group():
    miner = MinerFactory(customer=CustomerFactory())
    group = Group.objects.create(name="client-staff")
    assign_perm(CUSTOMER_VIEW, group, miner.customer)
    member = UserFactory(role="CLIENT")
    member.groups.add(group)
    user = User.objects.get(pk=member.pk)
    assert selectors.granted_customer_ids(user) == [miner.customer_id]
    assert list(selectors.site_list(user=user)) == [miner.site]
    assert list(selectors.customer_list(user=user)) == [miner.customer]


def test_a_view_grant_is_not_a_manage_grant(farm):
    user = fresh(farm, "siteowner_b_ro")
    assert selectors.granted_site_ids(user) == [farm.site_b.pk]
    assert selectors.granted_site_ids(user, manage=True) == []


def test_grant_ids_are_read_once_per_user_object(farm):
    user = fresh(farm, "siteowner_a")
    with CaptureQueriesContext(connection) as first:
        selectors.granted_site_ids(user)
    with CaptureQueriesContext(connection) as again:
        assert selectors.granted_site_ids(user) == [farm.site_a.pk]
    assert (len(first), len(again)) == (1, 0)


@pytest.mark.parametrize("username", ["owner", "siteowner_a", "client_x"])
def test_lists_cost_the_same_queries_for_a_bigger_farm(farm, username):
    def cost():
        user = fresh(farm, username)
        with CaptureQueriesContext(connection) as queries:
            list(selectors.site_list(user=user))
            list(selectors.zone_list(user=user))
            list(selectors.customer_list(user=user))
        return len(queries)

    small = cost()
    for _ in range(5):
        site = SiteFactory()
        MinerFactory(zone=ZoneFactory(site=site), site=site, customer=farm.client_x)
    assert cost() == small <= 4


def _site_owner_in_group(*perms_by_site):
    """A site owner whose only grants come through a group: ``perms_by_site`` is (site, codenames) pairs."""
    group = Group.objects.create(name=f"g{Group.objects.count()}")
    for site, codenames in perms_by_site:
        for codename in codenames:
            assign_perm(f"sites.{codename}", group, site)
    member = UserFactory(role="MINING_SITE_OWNER")
    member.groups.add(group)
    return User.objects.get(pk=member.pk)


def test_group_grants_count_only_their_own_permission_and_members():
    # Several sites first, so a site id cannot equal a grant row's id by chance.
    sites = [SiteFactory() for _ in range(4)]
    viewer = _site_owner_in_group((sites[2], ["view_site"]), (sites[3], ["change_site"]))
    outsider = UserFactory(role="MINING_SITE_OWNER")  # in no group
    assert selectors.granted_site_ids(viewer) == [sites[2].pk]
    assert selectors.granted_site_ids(viewer, manage=True) == [sites[3].pk]
    assert selectors.granted_site_ids(User.objects.get(pk=outsider.pk)) == []
    scopes = selectors.scopes_of([viewer, User.objects.get(pk=outsider.pk)])
    assert scopes[viewer.pk] == selectors.Scope("sites", (sites[2].pk,))
    assert scopes[outsider.pk] == selectors.Scope("sites", ())


def test_scopes_of_many_users_match_scope_of_each(farm):
    users = [fresh(farm, key) for key in ("owner", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest")]
    grouped = _site_owner_in_group((farm.site_b, ["view_site"]))
    scopes = selectors.scopes_of([*users, grouped])
    assert scopes == {u.pk: selectors.scope_of(fresh(farm, u.username)) for u in users} | {
        grouped.pk: selectors.Scope("sites", (farm.site_b.pk,))
    }
    assert scopes[farm.users["client_x"].pk] == selectors.Scope("customers", (farm.client_x.pk,))
    assert selectors.scopes_of([]) == {}


def test_a_client_sees_only_the_sites_and_zones_where_its_own_miners_stand(farm):
    client = UserFactory(role="CLIENT")
    customer = CustomerFactory()
    customer_add_contact(user=client, customer=customer)
    MinerFactory(zone=farm.zone_a, site=farm.site_a, customer=customer)
    user = User.objects.get(pk=client.pk)
    assert slugs(selectors.site_list(user=user)) == ["site-a"]  # site B has miners, none of this client's
    assert list(selectors.zone_list(user=user)) == [farm.zone_a]


def test_scope_filters_without_a_prefix():
    assert selectors.Scope("sites", (3,)).q().children == [("site_id__in", (3,))]
    assert selectors.Scope("all").q() is None


def test_customer_prefix_applies_to_the_client_filter_only():
    assert selectors.Scope("customers", (4,)).q(customer_prefix="miner__").children == [
        ("miner__customer_id__in", (4,))
    ]
    assert selectors.Scope("sites", (3,)).q(customer_prefix="miner__").children == [("site_id__in", (3,))]
    assert selectors.Scope("all").q(customer_prefix="miner__") is None


def test_site_infrastructure_is_for_site_operators_only():
    assert selectors.Scope("all").site_infrastructure() == selectors.Scope("all")
    assert selectors.Scope("sites", (3,)).site_infrastructure() == selectors.Scope("sites", (3,))
    assert selectors.Scope("customers", (4,)).site_infrastructure() == selectors.Scope("none")
    assert selectors.Scope("none").site_infrastructure() == selectors.Scope("none")


def test_read_only_refusal_says_why(farm):
    with pytest.raises(DomainError) as refused:
        selectors.require_site_manageable(user=fresh(farm, "siteowner_b_ro"), site_id=farm.site_b.pk)
    assert refused.value.message == "You may view this site but not change it or what is in it."
