"""The ROI waterfall page: why profit changed between two periods, for what the user may see (ANALYTICS READ).

The page is a GET form (scope, two periods, optional power price and capex), so its URL is the link to share. It
reads the same cached answer as ``GET /api/v1/explain/roi`` (``intelligence.roi``): a hosting client chooses only
among its own miners, a hidden site or client is a 404, an invalid field is shown next to that field.
``static/js/roi-waterfall.js`` draws the waterfall from the answer embedded with ``json_script``; ``?format=csv``
downloads the parts."""

from __future__ import annotations

from decimal import Decimal

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import streamed_csv
from hashinsight.portal.views.common import module_required
from intelligence import roi
from intelligence.api.roi_views import PART_LABELS, parts_csv
from sites.selectors import customer_list, scope_of, site_list

FIELDS = ("scope", *roi.DATE_PARAMS, "power_price_usd_per_kwh", "capex_usd")
# The inputs shown side by side: (key, label with unit, places).
INPUT_ROWS = [
    ("btc_price_usd", _("BTC price, average (USD)")),
    ("difficulty", _("Difficulty, average (T = 10¹²)")),
    ("fees_btc_per_block", _("Fees per block (BTC)")),
    ("block_subsidy_btc", _("Block subsidy (BTC)")),
    ("hashprice_usd_per_th_day", _("Hashprice (USD per TH/s per day)")),
    ("offline_rate", _("Offline rate (share of miner-time)")),
    ("power_price_usd_per_kwh", _("Power price (USD/kWh)")),
    ("fleet_ths", _("Fleet hashrate (TH/s)")),
    ("fleet_kw", _("Fleet power (kW)")),
    ("pool_fee_pct", _("Pool fee (%)")),
    ("telemetry_coverage", _("Telemetry coverage (share of miner-days)")),
    ("profit_usd", _("Profit (USD)")),
]
SOURCES = {
    "telemetry": _("measured from telemetry"),
    "model": _("modelled"),
    "site": _("site day-ahead prices"),
    "hosting_rate": _("contract hosting rate"),
    "portfolio": _("your portfolio's prices"),
    "override": _("the price you entered"),
    "default": _("default price"),
    "mixed": _("several sources"),
}


def scope_choices(user) -> list[tuple[str, str]]:
    """What the user may choose: everything they see, then each visible site and hosting client."""
    if scope_of(user).kind == "none":
        return [("user", str(_("Your portfolio")))]
    choices = [("user", str(_("All you can see")))]
    choices += [
        (f"site:{pk}", str(_("Site: %(name)s") % {"name": name}))
        for pk, name in site_list(user=user).order_by("name").values_list("pk", "name")
    ]
    choices += [
        (f"customer:{pk}", str(_("Hosting client: %(name)s") % {"name": name}))
        for pk, name in customer_list(user=user).order_by("company").values_list("pk", "company")
    ]
    return choices


@module_required(Module.ANALYTICS)
def roi_waterfall(request):
    query = request.GET
    errors: dict[str, str] = {}
    answer = None
    try:
        answer = roi.roi_explain(user=request.user, query=query).value
    except DomainError as exc:
        if exc.status == 404:
            raise Http404 from exc
        errors[exc.details.get("parameter", "general")] = exc.message
    if answer is not None and query.get("format") == "csv":
        return streamed_csv(request, parts_csv(answer), "roi-attribution")
    values = {f: query.get(f, "") for f in FIELDS}
    if answer is not None and not any(query.get(p) for p in roi.DATE_PARAMS):
        for period in ("before", "after"):  # show the default periods in the form
            values[f"{period}_start"], values[f"{period}_end"] = answer[period]["start"], answer[period]["end"]
    bounds = roi.market_bounds()
    parts = []
    inputs = []
    if answer is not None:
        roi_parts = (answer["roi"] or {}).get("parts_pp") or {}
        parts = [(key, label, answer["parts_usd"][key], roi_parts.get(key)) for key, label in PART_LABELS.items()]
        inputs = [
            (label, _shown(key, answer["before"][key]), _shown(key, answer["after"][key])) for key, label in INPUT_ROWS
        ]
    chart = None
    if answer is not None:
        chart = {
            "labels": [
                str(_("Profit before")),
                *[str(label) for label in PART_LABELS.values()],
                str(_("Profit after")),
            ],
            "before": answer["profit_before_usd"],
            "parts": [answer["parts_usd"][k] for k in PART_LABELS],
            "after": answer["profit_after_usd"],
            "axis": str(_("Profit (USD)")),
            "increase": str(_("Increase")),
            "decrease": str(_("Decrease")),
            "total": str(_("Total")),
        }
    return render(
        request,
        "portal/roi/waterfall.html",
        {
            "answer": answer,
            "errors": errors,
            "values": values,
            "scopes": scope_choices(request.user),
            "bounds": bounds,
            "parts": parts,
            "inputs": inputs,
            "chart": chart,
            "source_labels": _source_labels(answer),
            "csv_query": _csv_query(query),
            "max_span_days": roi.MAX_SPAN_DAYS,
        },
    )


def _shown(key: str, value):
    """The page's figure: difficulty in T (10¹²), shorter than its 14 digits on a phone; the API keeps them all."""
    if key == "difficulty":
        return f"{Decimal(value) / Decimal(10**12):.2f} T"
    return value


def _source_labels(answer: dict | None) -> dict:
    if answer is None:
        return {}
    labels = {}
    for period in ("before", "after"):
        labels[f"{period}_profit"] = SOURCES.get(answer[period]["profit_source"], answer[period]["profit_source"])
        labels[f"{period}_power"] = SOURCES.get(
            answer[period]["power_price_source"], answer[period]["power_price_source"]
        )
    return labels


def _csv_query(query) -> str:
    q = query.copy()
    q["format"] = "csv"
    return q.urlencode()
