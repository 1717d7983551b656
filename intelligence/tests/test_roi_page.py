"""The ROI waterfall page (/roi/): it renders the parts, the inputs and the chart's data for what the user may see,
shows a bad field next to that field, answers a hidden scope with 404, and exports the parts as CSV."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D

import pytest
from django.core.cache import cache

from intelligence.tests.test_roi_api import REAL, SHOWN

URL = "/roi/"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def chart_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="roi-chart-data" type="application/json">') + len(
        '<script id="roi-chart-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_page_renders_the_waterfall_parts_and_inputs(client, farm):
    client.force_login(farm.users["owner"])
    r = client.get(URL, {**REAL, "capex_usd": "50000"})
    assert r.status_code == 200
    html = r.content.decode()
    for testid in ("roi-parts", "roi-inputs", "roi-waterfall", "roi-csv", "profit-change", "roi-quality"):
        assert testid in html, testid
    data = chart_data(r)
    assert len(data["labels"]) == len(SHOWN) + 2
    assert sum(D(p) for p in data["parts"]) == D(data["after"]) - D(data["before"])
    assert "Fleet hashrate (TH/s)" in html and "Power price (USD/kWh)" in html
    # The scope menu lists what the owner sees.
    assert f'value="site:{farm.site_b.pk}"' in html and f'value="customer:{farm.client_y.pk}"' in html


def test_default_periods_fill_the_form(client, farm):
    client.force_login(farm.users["owner"])
    r = client.get(URL)
    assert r.status_code == 200
    assert 'name="after_end" value="20' in r.content.decode()


def test_hosting_client_chooses_only_among_its_own(client, farm):
    client.force_login(farm.users["client_x"])
    r = client.get(URL, REAL)
    html = r.content.decode()
    assert f'value="customer:{farm.client_x.pk}"' in html
    assert f'value="customer:{farm.client_y.pk}"' not in html
    assert client.get(URL, {**REAL, "scope": f"customer:{farm.client_y.pk}"}).status_code == 404


def test_bad_field_is_shown_next_to_it(client, farm):
    client.force_login(farm.users["owner"])
    r = client.get(URL, {**REAL, "after_start": "2024-03-01"})
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="error-after_start"' in html
    assert "roi-chart-data" not in html


@pytest.mark.parametrize(("username", "status"), [("customer", 200), ("client_x", 200), ("guest", 403)])
def test_page_per_role(client, farm, username, status):
    client.force_login(farm.users[username])
    assert client.get(URL, REAL).status_code == status


def test_anonymous_goes_to_login(client, farm):
    r = client.get(URL)
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_csv_export_of_the_parts(client, farm):
    client.force_login(farm.users["siteowner_a"])
    r = client.get(URL, {**REAL, "format": "csv"})
    assert r.status_code == 200
    assert r["Content-Disposition"].startswith('attachment; filename="roi-attribution-')
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    values = {row[1]: D(row[2]) for row in rows[1:]}
    assert sum(values[k] for k in SHOWN) == values["change"]
    # The site owner's figures: its site's three miners, as the API answers.
    api_body = client.get("/api/v1/explain/roi", REAL).json()
    assert api_body["scope"]["miners"] == 3
    assert values["change"] == D(api_body["change_usd"])


# The rows proposed for hashinsight/tests/test_permission_matrix.py PAGES (written out by hand, as there).
LOGIN = "login"
PAGE_USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest", "anonymous"]
PAGES = {
    #                                     owner admin so_a so_b_ro client_x customer guest anonymous
    "/roi/":                              (200, 200, 200, 200, 200, 200, 403, LOGIN),
    "/roi/?format=csv":                   (200, 200, 200, 200, 200, 200, 403, LOGIN),
    "/roi/?scope=site:{site_a}":          (200, 200, 200, 404, 200, 404, 403, LOGIN),
    "/roi/?scope=customer:{client_x}":    (200, 200, 200, 200, 200, 404, 403, LOGIN),
}  # fmt: skip


@pytest.mark.parametrize("username", PAGE_USERS)
def test_page_answers_each_role_as_written(client, farm, username):
    if username != "anonymous":
        client.force_login(farm.users[username])
    column = PAGE_USERS.index(username)
    for template, outcomes in PAGES.items():
        url = template.format(site_a=farm.site_a.pk, client_x=farm.client_x.pk)
        response = client.get(url)
        if outcomes[column] == LOGIN:
            assert response.status_code == 302 and "/login/" in response["Location"], url
        else:
            assert response.status_code == outcomes[column], (url, username)
