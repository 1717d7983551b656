"""An app customer's portfolio in the page: add, edit, remove; another user's entry is a 404; bad
input is a form error that changes nothing; a real browser adds and removes an entry."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from hashinsight.events.models import OutboxEvent
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 (fixtures)
from hashinsight.tests.factories import PASSWORD, MinerModelFactory
from miners.models import PortfolioEntry


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def s19(db):
    return MinerModelFactory(code="test-rig-95t", name="Test Rig", hashrate_ths=Decimal(95), power_w=Decimal(3250))


@pytest.mark.django_db
def test_customer_adds_an_entry_and_sees_its_money(farm, s19):
    customer = farm.users["customer"]
    response = login(customer).post(
        "/portfolio/add/",
        {"model": s19.pk, "quantity": "4", "power_price_usd_per_kwh": "0.045", "label": "Garage"},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)]
    entry = PortfolioEntry.objects.get(user=customer, label="Garage")
    assert (entry.model_id, entry.quantity, entry.power_price_usd_per_kwh) == (s19.pk, 4, Decimal("0.045"))
    assert OutboxEvent.objects.filter(event_type="portfolio.changed", payload__user_id=customer.pk).exists()
    html = response.content.decode()
    assert "Added to your portfolio." in html
    assert len(re.findall(r'data-testid="portfolio-row"', html)) == 2
    # The figures already include the new entry (the summary is rebuilt on the write, not later).
    assert f'data-entry="{entry.pk}"' in html
    row = html[html.index(f'data-entry="{entry.pk}"') :].split("</tr>")[0]
    assert "0.0450 USD/kWh" in row
    assert re.search(r"\$\d+\.\d{2}</td>", row)  # a revenue figure, not "—"


@pytest.mark.django_db
def test_the_add_form_starts_from_the_calculators_common_model_and_price(farm):
    html = login(farm.users["customer"]).get("/portfolio/add/").content.decode()
    common = farm.portfolio["customer"].model  # the factory's Antminer S21 200T, the calculator's default
    assert re.search(rf'<option value="{common.pk}" selected>', html)
    assert 'name="power_price_usd_per_kwh" value="0.05"' in html
    assert 'name="quantity" value="1"' in html


@pytest.mark.django_db
def test_customer_edits_its_entry(farm, s19):
    entry = farm.portfolio["customer"]
    response = login(farm.users["customer"]).post(
        f"/portfolio/{entry.pk}/edit/",
        {"model": s19.pk, "quantity": "7", "power_price_usd_per_kwh": "0.06", "label": "Renamed"},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.model_id, entry.quantity, entry.power_price_usd_per_kwh, entry.label) == (
        s19.pk,
        7,
        Decimal("0.06"),
        "Renamed",
    )


@pytest.mark.django_db
def test_customer_removes_its_entry_after_confirming(farm):
    entry = farm.portfolio["customer"]
    client = login(farm.users["customer"])
    confirm = client.get(f"/portfolio/{entry.pk}/delete/")
    assert confirm.status_code == 200
    assert PortfolioEntry.objects.filter(pk=entry.pk).exists()  # a GET removes nothing
    assert client.post(f"/portfolio/{entry.pk}/delete/").status_code == 302
    assert not PortfolioEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("action", ["edit", "delete"])
def test_another_users_entry_is_not_found(farm, s19, method, action):
    other = farm.portfolio["customer2"]
    before = (other.model_id, other.quantity, other.power_price_usd_per_kwh, other.label)
    client = login(farm.users["customer"])
    data = {"model": s19.pk, "quantity": "1", "power_price_usd_per_kwh": "0.01", "label": "mine now"}
    response = getattr(client, method)(f"/portfolio/{other.pk}/{action}/", data if method == "post" else None)
    assert response.status_code == 404
    missing = getattr(client, method)(f"/portfolio/{other.pk + 1000}/{action}/")
    assert missing.status_code == 404  # hidden and missing look the same
    other.refresh_from_db()
    assert (other.model_id, other.quantity, other.power_price_usd_per_kwh, other.label) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "0"),
        ("quantity", "-3"),
        ("quantity", "lots"),
        ("quantity", "1000001"),
        ("power_price_usd_per_kwh", "-0.01"),
        ("power_price_usd_per_kwh", "11"),
        ("power_price_usd_per_kwh", "0.0000001"),
        ("model", "999999"),
        ("label", "x" * 121),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(farm, s19, field, value):
    entry = farm.portfolio["customer"]
    before = (entry.model_id, entry.quantity, entry.power_price_usd_per_kwh, entry.label)
    count = PortfolioEntry.objects.count()
    client = login(farm.users["customer"])
    data = {"model": s19.pk, "quantity": "5", "power_price_usd_per_kwh": "0.05", "label": "ok", field: value}
    for url in ("/portfolio/add/", f"/portfolio/{entry.pk}/edit/"):
        response = client.post(url, data)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-testid="field-error"' in html
        assert PortfolioEntry.objects.count() == count
        entry.refresh_from_db()
        assert (entry.model_id, entry.quantity, entry.power_price_usd_per_kwh, entry.label) == before
    assert not OutboxEvent.objects.filter(event_type="portfolio.changed").exists()


@pytest.mark.django_db
def test_a_guest_may_not_keep_a_portfolio(farm):
    response = login(farm.users["guest"]).get("/portfolio/add/")
    assert response.status_code == 403


@pytest.mark.django_db
def test_signed_out_visitors_are_sent_to_log_in(farm):
    response = Client().get("/portfolio/add/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_customer_adds_then_removes_an_entry_in_the_page(page, live_server, farm, s19):  # noqa: F811
    customer = farm.users["customer"]
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", customer.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    rows = page.locator("[data-testid=portfolio-row]")
    assert rows.count() == 1
    revenue_before = page.locator("[data-testid=portfolio-revenue]").inner_text()

    page.click("[data-testid=portfolio-add]")
    page.select_option("#id_model", str(s19.pk))
    page.fill("#id_quantity", "0")
    page.fill("#id_power_price_usd_per_kwh", "0.05")
    page.click("[data-testid=portfolio-save]")
    assert page.locator("[data-testid=field-error]").count() == 1  # refused, still on the form
    page.fill("#id_quantity", "1200")
    page.fill("#id_label", "Browser rig")
    page.click("[data-testid=portfolio-save]")
    page.wait_for_url(f"{live_server.url}/")
    assert rows.count() == 2
    new_row = page.locator("[data-testid=portfolio-row]", has_text="Browser rig")
    assert "1,200" in new_row.inner_text()
    revenue_after = page.locator("[data-testid=portfolio-revenue]").inner_text()
    assert revenue_after != revenue_before and revenue_after.startswith("$")
    assert "," in revenue_after  # 1,200 more miners: thousands of dollars a day

    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the table scrolls inside its card
    new_row.locator("[data-testid=portfolio-remove]").click()
    page.click("[data-testid=portfolio-confirm-remove]")
    page.wait_for_url(f"{live_server.url}/")
    assert rows.count() == 1
    assert page.locator("[data-testid=portfolio-revenue]").inner_text() == revenue_before
    assert not PortfolioEntry.objects.filter(label="Browser rig").exists()
