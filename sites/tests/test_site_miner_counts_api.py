"""The sites API counts the miners the requester may see, as the portal's site list does: a hosting
client its own (never the other clients' beside them), an operator every miner on the site."""

import pytest

pytestmark = pytest.mark.django_db


def counts(api, user) -> dict[str, int]:
    api.force_authenticate(user)
    return {row["slug"]: row["miner_count"] for row in api.get("/api/v1/sites").json()["results"]}


def test_client_counts_only_its_own_miners(api, farm):
    assert counts(api, farm.users["client_x"]) == {"site-a": 1, "site-b": 1}


def test_operators_count_every_miner_on_their_sites(api, farm):
    assert counts(api, farm.users["owner"]) == {"site-a": 3, "site-b": 3}
    assert counts(api, farm.users["siteowner_a"]) == {"site-a": 3}


def test_detail_counts_the_same(api, farm):
    api.force_authenticate(farm.users["client_y"])
    assert api.get(f"/api/v1/sites/{farm.site_b.pk}").json()["miner_count"] == 1
