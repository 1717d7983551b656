"""The curtailment plans API: create (v1 and the seed's path) → 201; malformed or infeasible input → 400 with
``error_code`` and ``details.constraint``, nothing stored; list (filters, sort, pages, CSV), detail, send;
permissions per role and site scope (hidden → 404, read-only grant → 403)."""

from __future__ import annotations

import json

import pytest

from intelligence.models import CurtailmentPlan
from intelligence.tests.test_plans_services import breakevens, load_prices, shape, tomorrow_utc

pytestmark = pytest.mark.django_db
PLANS = "/api/v1/curtailment/plans"
SEED = "/api/optimize/curtailment"


@pytest.fixture
def priced(farm):
    return with_prices(farm)


def with_prices(farm):
    """The farm with a market day and tomorrow's (UTC) day-ahead prices on both sites (everything off in 16–18)."""
    from decimal import Decimal

    from intelligence.models import MarketDay

    MarketDay.objects.create(
        date="2025-11-01", btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"), fees_btc=Decimal(4)
    )
    _hp, be19, be21 = breakevens()
    start = tomorrow_utc()
    for s in (farm.site_a, farm.site_b):
        load_prices(s, start, shape(be19, be21))  # every miner goes off in hours 16–18
    farm.start = start.isoformat()
    return farm


def post(api, user, body, url=PLANS):
    api.force_authenticate(user)
    return api.post(url, json.dumps(body), content_type="application/json")


def test_create_answers_201_with_the_plan_on_both_paths(api, priced):
    for url in (PLANS, SEED):
        r = post(api, priced.users["siteowner_a"], {"site": priced.site_a.pk, "start": priced.start}, url)
        assert r.status_code == 201, r.json()
        body = r.json()
        assert body["site"] == priced.site_a.pk and body["status"] == "draft" and body["hours"] == 24
        assert set(body["result"]) >= {"plan", "run_all", "threshold"}
        assert body["solver"]["status"] and body["profit_usd"] is not None
        assert len(body["inputs"]["prices_usd_per_mwh"]) == 24 and body["commands"] == []
    assert CurtailmentPlan.objects.count() == 2


BAD = [
    ({"prices_usd_per_mwh": []}, "empty", "prices_usd_per_mwh"),
    ({"prices_usd_per_mwh": ["NaN"] + [30] * 23}, "not_finite", "prices_usd_per_mwh"),
    ({"prices_usd_per_mwh": [30] * 23 + [-5]}, "negative", "prices_usd_per_mwh"),
    ({"prices_usd_per_mwh": [30] * 10}, "length_mismatch", "prices_usd_per_mwh"),
    ({"hours": 12}, "out_of_range", "hours"),
    ({"hours": 169}, "out_of_range", "hours"),
    ({"constraints": {"cap_kw": -1}}, "negative", "cap_kw"),
    ({"constraints": {"curtail_pct": 120}}, "out_of_range", "curtail_pct"),
    ({"constraints": {"cap_kw": 0, "ramp_kw_per_hour": 1}}, "infeasible", "ramp_kw_per_hour"),
    ({"constraints": {"zone_capacity_kw": {"999999": 10}}}, "unknown", "zone_capacity_kw"),
    ({"constraints": {"surprise": 1}}, "unknown", "surprise"),
    ({"start": "tomorrow"}, "invalid", "start"),
    ({"start": "2030-01-01T00:30:00Z"}, "out_of_range", "start"),
    ({"hashprice_usd_per_th_day": "NaN"}, "not_finite", "hashprice_usd_per_th_day"),
    (
        {"prices_usd_per_mwh": [30] * 24, "hashprice_usd_per_th_day": 0.05, "constraints": {"cap_kw": 5},
         "groups": [{"id": "a", "count": 4, "kw_each": 3.5, "ths_each": 200, "firm_count": 2}]},
        "infeasible", "cap_kw",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "code", "constraint"), BAD, ids=[f"{c}-{k}" for _e, c, k in BAD])
def test_bad_input_is_a_400_naming_the_constraint_and_stores_nothing(api, priced, extra, code, constraint):
    r = post(api, priced.users["owner"], {"site": priced.site_a.pk, "start": priced.start, **extra})
    assert r.status_code == 400, r.json()
    body = r.json()
    assert body["error_code"] == code
    assert body["details"]["constraint"] == constraint
    assert constraint in body["message"]
    assert not CurtailmentPlan.objects.exists()


def test_malformed_json_nan_is_a_400(api, priced):
    api.force_authenticate(priced.users["owner"])
    raw = f'{{"site": {priced.site_a.pk}, "start": "{priced.start}", "prices_usd_per_mwh": [NaN]}}'
    r = api.post(PLANS, raw, content_type="application/json")
    assert r.status_code == 400
    assert not CurtailmentPlan.objects.exists()


@pytest.mark.parametrize(
    ("user", "site", "expected"),
    [
        ("owner", "site_a", 201), ("admin", "site_b", 201), ("siteowner_a", "site_a", 201),
        ("siteowner_a", "site_b", 404),  # not granted: hidden
        ("siteowner_b_ro", "site_b", 403),  # read-only grant
        ("client_x", "site_a", 403), ("customer", "site_a", 403), ("guest", "site_a", 403),
    ],
)  # fmt: skip
def test_who_may_create(api, priced, user, site, expected):
    r = post(api, priced.users[user], {"site": getattr(priced, site).pk, "start": priced.start})
    assert r.status_code == expected, r.json()
    if expected != 201:
        assert not CurtailmentPlan.objects.exists()


def _plan(priced, site="site_a"):
    from intelligence import curtailment_plans as plans

    data = {"site": getattr(priced, site).pk, "start": priced.start}
    return plans.plan_create(actor=priced.users["owner"], data=data)


@pytest.mark.parametrize(
    ("user", "on_a", "on_b"),
    [
        ("owner", 200, 200), ("siteowner_a", 200, 404), ("siteowner_b_ro", 404, 200),
        ("client_x", 403, 403), ("customer", 403, 403),
    ],
)  # fmt: skip
def test_who_may_read(api, priced, user, on_a, on_b):
    a, b = _plan(priced), _plan(priced, "site_b")
    api.force_authenticate(priced.users[user])
    assert api.get(f"{PLANS}/{a.pk}").status_code == on_a
    assert api.get(f"{PLANS}/{b.pk}").status_code == on_b
    listed = api.get(PLANS)
    if on_a == 403:
        assert listed.status_code == 403
    else:
        ids = {row["id"] for row in listed.json()["results"]}
        assert ids == {p.pk for p, code in ((a, on_a), (b, on_b)) if code == 200}


@pytest.mark.parametrize(
    ("user", "site", "expected"),
    [("siteowner_a", "site_a", 200), ("siteowner_b_ro", "site_b", 403), ("siteowner_a", "site_b", 404)],
)
def test_who_may_send(api, priced, user, site, expected):
    plan = _plan(priced, site)
    r = post(api, priced.users[user], {}, f"{PLANS}/{plan.pk}/send")
    assert r.status_code == expected, r.json()
    plan.refresh_from_db()
    if expected == 200:
        assert plan.status == "sent" and r.json()["commands"] and r.json()["blocks"]
        again = post(api, priced.users[user], {}, f"{PLANS}/{plan.pk}/send")
        assert again.status_code == 200 and again.json()["commands"] == r.json()["commands"]
    else:
        assert plan.status == "draft" and not plan.commands.exists()


def test_send_refuses_an_unknown_mode(api, priced):
    plan = _plan(priced)
    r = post(api, priced.users["owner"], {"mode": "gentle"}, f"{PLANS}/{plan.pk}/send")
    assert r.status_code == 400 and not plan.commands.exists()


def test_list_filters_sorts_pages_and_exports_csv(api, priced):
    a1, a2, b = _plan(priced), _plan(priced), _plan(priced, "site_b")
    CurtailmentPlan.objects.filter(pk=a2.pk).update(status="sent")
    api.force_authenticate(priced.users["owner"])
    assert [r["id"] for r in api.get(PLANS).json()["results"]] == [b.pk, a2.pk, a1.pk]
    assert [r["id"] for r in api.get(PLANS, {"site": priced.site_a.pk}).json()["results"]] == [a2.pk, a1.pk]
    assert [r["id"] for r in api.get(PLANS, {"status": "sent"}).json()["results"]] == [a2.pk]
    day = tomorrow_utc().date().isoformat()
    assert len(api.get(PLANS, {"date": day}).json()["results"]) == 3
    assert api.get(PLANS, {"date": "2001-01-01"}).json()["results"] == []
    assert [r["id"] for r in api.get(PLANS, {"sort": "id"}).json()["results"]] == [a1.pk, a2.pk, b.pk]
    page = api.get(PLANS, {"limit": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert api.get(PLANS, {"sort": "bogus"}).status_code == 400
    csv = api.get(PLANS, {"format": "csv", "site": priced.site_a.pk})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Plan,Site,Status") and "Planned profit (USD)" in lines[0]
    assert len(lines) == 3
