"""The edge-device list page: who sees which devices, filters, sort, CSV."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telemetry import devices
from telemetry.models import EdgeDevice

pytestmark = pytest.mark.django_db
URL = reverse("portal:edge-device-list")


def new_device(site, name):
    _row, code = devices.enrollment_code_create(site=site)
    return devices.device_register(code=code, name=name, version="1.2.0")[0]


@pytest.fixture
def fleet(farm):
    a1 = new_device(farm.site_a, "a-collector")
    a2 = new_device(farm.site_a, "a-spare")
    b1 = new_device(farm.site_b, "b-collector")
    EdgeDevice.objects.filter(pk=a1.pk).update(last_seen_at=timezone.now(), last_seen_ip="10.0.0.7")
    EdgeDevice.objects.filter(pk=b1.pk).update(last_seen_at=timezone.now() - timedelta(days=3))
    devices.device_revoke(device=EdgeDevice.objects.get(pk=a2.pk))
    return {"a1": a1, "a2": a2, "b1": b1}


def names(response) -> list[str]:
    html = response.content.decode()
    return [n for n in ("a-collector", "a-spare", "b-collector") if f">{n}<" in html]


@pytest.mark.parametrize(
    "who, expected",
    [
        ("owner", ["a-collector", "a-spare", "b-collector"]),
        ("admin", ["a-collector", "a-spare", "b-collector"]),
        ("siteowner_a", ["a-collector", "a-spare"]),
        ("siteowner_b_ro", ["b-collector"]),
    ],
)
def test_operators_see_the_devices_of_their_sites(client, farm, fleet, who, expected):
    client.force_login(farm.users[who])
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response) == expected


@pytest.mark.parametrize("who", ["client_x", "customer", "guest"])
def test_clients_and_customers_are_refused(client, farm, fleet, who):
    client.force_login(farm.users[who])
    assert client.get(URL).status_code == 403


def test_filters_sort_and_csv(client, farm, fleet):
    client.force_login(farm.users["owner"])
    assert names(client.get(URL, {"status": "revoked"})) == ["a-spare"]
    assert names(client.get(URL, {"status": "active"})) == ["a-collector", "b-collector"]
    assert names(client.get(URL, {"site": farm.site_b.pk})) == ["b-collector"]
    assert names(client.get(URL, {"q": "10.0.0"})) == ["a-collector"]
    quiet = client.get(URL, {"seen_before": (timezone.now() - timedelta(days=1)).date().isoformat()})
    assert names(quiet) == ["a-spare", "b-collector"]  # never seen counts as quiet
    html = client.get(URL, {"sort": "-status"}).content.decode()
    assert html.index(">a-spare<") < html.index(">a-collector<")  # revoked sorts after active: reversed here
    export = client.get(URL, {"format": "csv", "status": "revoked"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert export.status_code == 200 and "a-spare" in text and "Revoked" in text and "a-collector" not in text


def test_site_page_links_to_the_list(client, farm, fleet):
    client.force_login(farm.users["siteowner_a"])
    html = client.get(reverse("portal:site-detail", args=[farm.site_a.slug])).content.decode()
    assert f"{URL}?site={farm.site_a.pk}" in html
