"""Where admin lets a site owner place a zone or a miner: only sites it may change, never one it only
views (sites.selectors.manageable_site_list), while an admin may pick any site."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from hashinsight.accounts.roles import Role
from hashinsight.tests.factories import SiteFactory, UserFactory
from miners.models import Miner
from sites import services
from sites.models import Zone

pytestmark = pytest.mark.django_db


def site_choices(model, user) -> set[str]:
    request = RequestFactory().get("/")
    request.user = type(user).objects.get(pk=user.pk)  # grant ids are cached per user object
    model_admin = admin.site._registry[model]
    field = model_admin.formfield_for_foreignkey(model._meta.get_field("site"), request)
    return set(field.queryset.values_list("slug", flat=True))


@pytest.mark.parametrize("model", [Zone, Miner])
def test_site_owner_places_only_on_sites_it_manages(model):
    managed, viewed, _hidden = SiteFactory(slug="managed"), SiteFactory(slug="viewed"), SiteFactory(slug="hidden")
    owner = UserFactory(role=Role.MINING_SITE_OWNER)
    services.site_grant(user=owner, site=managed, manage=True)
    services.site_grant(user=owner, site=viewed, manage=False)
    assert site_choices(model, owner) == {"managed"}


@pytest.mark.parametrize("model", [Zone, Miner])
def test_admin_places_on_any_site(model):
    SiteFactory(slug="one"), SiteFactory(slug="two")
    assert site_choices(model, UserFactory(role=Role.ADMIN)) == {"one", "two"}
