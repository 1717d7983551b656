"""``GET /api/v1/explain/roi`` and the seed's ``GET /api/explain/roi``: why profit (and ROI) changed between two
periods, split exactly over BTC price, difficulty, offline rate, power price and fees/residual
(``intelligence.roi``). ANALYTICS READ; the scope is the caller's (a hosting client: its own miners only), a hidden
site or client is a 404. ``?format=csv`` answers the parts as a file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.portal.tables import safe_cell, streamed_csv
from intelligence import roi

PART_LABELS = {
    "btc_price": _("BTC price"),
    "difficulty": _("Difficulty"),
    "offline_rate": _("Offline rate"),
    "power_price": _("Power price"),
    "fees_residual": _("Fees and residual"),
}


def parts_csv(answer: dict) -> Iterator[bytes]:
    """The waterfall as rows: profit before, each part, profit after (USD; ROI in percentage points when a capex
    was given)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    roi_parts = (answer.get("roi") or {}).get("parts_pp") or {}
    writer.writerow([str(_("Step")), str(_("Key")), str(_("Amount (USD)")), str(_("ROI (percentage points)"))])
    roi_info = answer.get("roi") or {}
    writer.writerow(
        [str(_("Profit before")), "profit_before", answer["profit_before_usd"], roi_info.get("before_pct", "")]
    )
    for key, label in PART_LABELS.items():
        writer.writerow([safe_cell(str(label)), key, answer["parts_usd"][key], roi_parts.get(key, "")])
    writer.writerow([str(_("Profit after")), "profit_after", answer["profit_after_usd"], roi_info.get("after_pct", "")])
    writer.writerow([str(_("Change in profit")), "change", answer["change_usd"], roi_info.get("change_pp", "")])
    yield buffer.getvalue().encode()


PARAMS = [
    OpenApiParameter("scope", str, description="user (default: all you may see) | site:<id> | customer:<id>"),
    *[
        OpenApiParameter(
            p,
            OpenApiTypes.DATE,
            description="all four dates, or none: the last 30 days of market data against the 30 before",
        )
        for p in roi.DATE_PARAMS
    ],
    OpenApiParameter(
        "power_price_usd_per_kwh",
        OpenApiTypes.DECIMAL,
        description="for sites without day-ahead prices in a period (default 0.05)",
    ),
    OpenApiParameter("capex_usd", OpenApiTypes.DECIMAL, description="the investment ROI is measured against"),
]


class RoiExplainView(CsvCapableAPIView):
    """The change in profit between two periods, split exactly (Shapley values over four factors), with each
    period's inputs, ROI before and after when ``capex_usd`` is given, and notes on the data's quality."""

    module = Module.ANALYTICS
    permission_classes = [ModuleAccess]

    @extend_schema(
        parameters=PARAMS,
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="a parameter is invalid: error_code invalid_<parameter>"),
            404: OpenApiResponse(description="site or client not visible"),
        },
        tags=["intelligence"],
    )
    def get(self, request):
        cached = roi.roi_explain(user=request.user, query=request.query_params)
        if self.wants_csv():
            return streamed_csv(request, parts_csv(cached.value), "roi-attribution")
        return Response(cached.value, headers={"X-Cache": cached.state})
