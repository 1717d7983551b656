"""The calculator page: a result on first load, partial links, visible overrides, the network bound,
and one error per field."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from hashinsight.portal.forms.calculator import DEFAULT_MODEL_CODE, CalculatorForm, network_hashrate_ths
from intelligence.market import latest_snapshot
from intelligence.profitability import ProfitInputs, mining_profitability
from miners.models import MinerModel

pytestmark = pytest.mark.django_db


def _s21() -> MinerModel:
    # Seeded by the catalog migration; created here when a transactional test flushed it.
    model, _ = MinerModel.objects.get_or_create(
        code=DEFAULT_MODEL_CODE,
        defaults={"vendor": "Bitmain", "name": "Antminer S21", "hashrate_ths": 200, "power_w": 3500},
    )
    return model


def _expected(**overrides) -> Decimal:
    """Revenue per day by the pure function, at the page's defaults (written out, not read from the form)."""
    market = latest_snapshot()
    inputs = {
        "hashrate_ths": Decimal(200),
        "power_w": Decimal(3500),
        "quantity": 1,
        "electricity_usd_per_kwh": Decimal("0.05"),
        "btc_price_usd": market.btc_price_usd,
        "difficulty": market.difficulty,
        "block_subsidy_btc": market.block_subsidy_btc,
        "fees_btc_per_block": market.fees_btc_per_block,
        "pool_fee_pct": Decimal(2),
    } | overrides
    return mining_profitability(ProfitInputs(**inputs)).revenue_usd_per_day


def _text(response, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', response.content.decode(), re.S)
    assert match, f"no {testid} on the page"
    return " ".join(match.group(1).split())


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def test_first_visit_shows_a_result_for_the_preselected_model(client):
    model = _s21()
    response = client.get("/calculator/")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.cleaned_data["model"] == model
    assert f'<option value="{model.pk}" data-hashrate-ths="200" data-power-w="3500" selected>' in (
        response.content.decode()
    )
    assert _text(response, "revenue-day") == _money(_expected())
    assert "Antminer S21" in _text(response, "calculator-subject")
    assert 'data-testid="override-badge"' not in response.content.decode()
    # Today's market figures, and their date, fill the form.
    market = latest_snapshot()
    assert form["btc_price_usd"].value() == str(market.btc_price_usd)
    assert market.date in _text(response, "market-date")


def test_a_link_with_some_figures_fills_the_rest_with_defaults(client):
    _s21()
    response = client.get("/calculator/?quantity=10")
    assert response.status_code == 200 and response.context["form"].errors == {}
    assert _text(response, "revenue-day") == _money(_expected(quantity=10))

    market_override = client.get("/calculator/?btc_price_usd=100000&electricity_usd_per_kwh=")
    assert market_override.context["form"].errors == {}  # an empty figure takes its default
    assert _text(market_override, "revenue-day") == _money(_expected(btc_price_usd=Decimal(100000)))


def test_an_old_link_with_hashrate_and_power_but_no_model_is_a_custom_miner(client):
    _s21()
    response = client.get("/calculator/?hashrate_ths=100&power_w=3000")
    assert response.context["form"].cleaned_data["model"] is None
    assert _text(response, "revenue-day") == _money(_expected(hashrate_ths=Decimal(100), power_w=Decimal(3000)))
    assert "custom miner" in _text(response, "calculator-subject")
    # With only one of them, the preselected model supplies the other.
    one = client.get("/calculator/?hashrate_ths=210")
    assert one.context["form"].errors == {} and one.context["form"].cleaned_data["model"].code == DEFAULT_MODEL_CODE
    assert _text(one, "revenue-day") == _money(_expected(hashrate_ths=Decimal(210)))
    assert "Custom: 210 TH/s instead of 200 TH/s nominal" in _text(one, "override-badge")


def test_overriding_the_models_figures_is_shown(client):
    model = _s21()
    response = client.get(f"/calculator/?model={model.pk}&hashrate_ths=190&power_w=3500")
    badges = re.findall(r'data-testid="override-badge">([^<]+)<', response.content.decode())
    assert badges == ["Custom: 190 TH/s instead of 200 TH/s nominal"]  # power equals nominal: no badge
    assert _text(response, "revenue-day") == _money(_expected(hashrate_ths=Decimal(190)))

    both = client.get(f"/calculator/?model={model.pk}&hashrate_ths=210.5&power_w=3300")
    assert re.findall(r'data-testid="override-badge">([^<]+)<', both.content.decode()) == [
        "Custom: 210.5 TH/s instead of 200 TH/s nominal",
        "Custom: 3,300 W instead of 3,500 W nominal",
    ]


def test_a_fleet_larger_than_the_network_is_refused(client):
    _s21()
    difficulty = latest_snapshot().difficulty
    network = network_hashrate_ths(difficulty)
    # difficulty × 2³² hashes per 600 s, written out: about 901 EH/s at the shipped difficulty.
    assert network == difficulty * 2**32 / 600 / 10**12
    per_miner = (network / 1_000_000).quantize(Decimal(1)) + 1  # a million of these exceed the network
    response = client.get(f"/calculator/?model=&hashrate_ths={per_miner}&power_w=3000&quantity=1000000")
    assert response.status_code == 200
    assert response.context["result"] is None
    message = _text(response, "calculator-error")
    assert "larger than the whole Bitcoin network" in message and "EH/s" in message
    # Just inside the network's hashrate is still computed.
    fits = client.get(f"/calculator/?model=&hashrate_ths={per_miner - 2}&power_w=3000&quantity=1000000")
    assert fits.context["result"] is not None


@pytest.mark.parametrize(
    "query, field",
    [
        ("model=&hashrate_ths=abc&power_w=3000", "hashrate_ths"),
        ("model=&hashrate_ths=100&power_w=-5", "power_w"),
        ("model=&hashrate_ths=0&power_w=3000", "hashrate_ths"),
        ("model=&hashrate_ths=&power_w=3000", "hashrate_ths"),
        ("quantity=0", "quantity"),
        ("quantity=ten", "quantity"),
        ("pool_fee_pct=100", "pool_fee_pct"),
        ("model=999999", "model"),
        ("model=abc&hashrate_ths=", "model"),
    ],
)
def test_one_error_per_field(client, query, field):
    _s21()
    response = client.get(f"/calculator/?{query}")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert len(errors[field]) == 1, errors
    assert response.context["result"] is None
    assert response.content.decode().count('class="invalid-feedback"') == 1


def test_custom_miner_without_figures_asks_for_them(client):
    response = client.get("/calculator/?model=")
    errors = response.context["form"].errors
    assert errors == {
        "hashrate_ths": ["Pick a model or enter the hashrate."],
        "power_w": ["Pick a model or enter the power draw."],
    }


def test_the_formula_is_translated(client):
    _s21()
    english = _text(client.get("/calculator/"), "formula")
    assert "BTC per day = hashrate (H/s)" in english
    client.cookies["django_language"] = "zh-hans"
    response = client.get("/calculator/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    # The lead fills in the zh-Hans catalogue; until then the text falls back to English, but it is
    # marked for translation (it comes from {% translate %}, not from intelligence.profitability.FORMULA).
    assert 'data-testid="formula"' in response.content.decode()
    assert "hashrate_H/s" not in response.content.decode()


def test_default_model_falls_back_to_the_catalogs_first_row():
    MinerModel.objects.filter(code=DEFAULT_MODEL_CODE).delete()
    first = MinerModel.objects.first()
    assert CalculatorForm.defaults()["model"] == (str(first.pk) if first else "")
