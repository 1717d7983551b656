"""The market part's API: a site's power prices (``/api/v1/sites/{site_id}/power-prices``: read as JSON or CSV,
load by CSV upload) and the market days with their hashprice (``/api/v1/market/days``, ``/api/v1/market/latest``).
Rules in ``intelligence.power_price_services`` (who may read and load prices) and ``intelligence.market_data``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api import parsers
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import market_data
from intelligence import power_price_services as svc
from intelligence.models import PowerMarket

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")
MAX_JSON_INTERVALS = 20_000  # a JSON answer's cap (about 7 months of 15-minute prices); CSV streams everything

PRICE_CSV = [
    CsvColumn(_("Market"), "market", display=dict(PowerMarket.choices)),
    CsvColumn("timestamp_utc", "interval_start"),
    CsvColumn(_("Interval (min)"), "interval_minutes"),
    CsvColumn("usd_per_mwh", "usd_per_mwh"),
    CsvColumn(_("Source"), "source"),
]


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    text = raw.strip()
    try:
        moment = parse_datetime(text.replace("Z", "+00:00")) if "T" in text else None
        if moment is None:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        moment = None
    if moment is None:
        message = f"{name}: {raw[:40]!r} is not an ISO-8601 date or time."
        raise DomainError("invalid_query", message, details={name: raw})
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        message = f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD)."
        raise DomainError("invalid_query", message, details={name: raw}) from None


def _market_param(raw: str | None, *, required: bool) -> str | None:
    if not raw:
        if required:
            raise DomainError(
                "missing_market", "Say which market: market=day_ahead or market=real_time.",
                details={"allowed": list(PowerMarket.values)},
            )  # fmt: skip
        return None
    return svc._market(raw)


class SitePowerPricesView(CsvCapableAPIView):
    """A site's power prices (USD/MWh per interval, UTC). GET: ``market`` (day_ahead, real_time; both when
    absent), ``start``/``end`` (ISO date or time, UTC; [start, end)); ``?format=csv`` streams every interval.
    POST: a CSV ``timestamp_utc,usd_per_mwh`` (multipart field ``file`` with a ``market`` field, or a text/csv
    body with ``?market=``); every row is checked first, any bad row is a 400 naming the row and the column and
    nothing is written. Operators only: hosting clients 403, a hidden site 404, a read-only grant 403 on POST."""

    module = Module.HOSTING
    permission_classes = [ModuleAccess]
    parser_classes = [MultiPartParser, FormParser, parsers.RawBodyParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("market", str, enum=list(PowerMarket.values)),
            OpenApiParameter("start", OpenApiTypes.DATETIME),
            OpenApiParameter("end", OpenApiTypes.DATETIME),
        ],
        responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): CSV_RESPONSE},
        tags=["market"],
    )
    def get(self, request, site_id: int):
        site = svc.price_site_for_read(user=request.user, site_id=site_id)
        q = request.query_params
        market = _market_param(q.get("market"), required=False)
        start, end = _moment(q.get("start"), "start"), _moment(q.get("end"), "end")
        qs = svc.power_prices(site=site, market=market, start=start, end=end)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(PRICE_CSV, qs), f"power-prices-{site.slug}")
        rows = list(
            qs.values_list("market", "interval_start", "interval_minutes", "usd_per_mwh")[: MAX_JSON_INTERVALS + 1]
        )
        truncated = len(rows) > MAX_JSON_INTERVALS
        return Response(
            {
                "site": site.pk,
                "market": market,
                "start": start,
                "end": end,
                "unit": "USD/MWh",
                "truncated": truncated,
                "results": [
                    {"market": m, "interval_start": t, "interval_minutes": n, "usd_per_mwh": str(p)}
                    for m, t, n, p in rows[:MAX_JSON_INTERVALS]
                ],
            }
        )

    @extend_schema(
        request={"multipart/form-data": OpenApiTypes.OBJECT, "text/csv": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("market", str, enum=list(PowerMarket.values))],
        responses={201: OpenApiTypes.OBJECT},
        tags=["market"],
    )
    def post(self, request, site_id: int):
        site = svc.price_site_for_write(user=request.user, site_id=site_id)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            upload = request.FILES.get("file")
            if upload is None:
                raise DomainError("missing_file", "Send the CSV as a multipart field named 'file'.")
            market = _market_param(request.data.get("market") or request.query_params.get("market"), required=True)
            data, filename = upload.read(), upload.name or ""
        elif content_type in ("text/csv", "application/csv", "text/plain", ""):
            market = _market_param(request.query_params.get("market"), required=True)
            data, filename = (request.data if isinstance(request.data, bytes) else b""), ""
        else:
            raise DomainError(
                "unsupported_media_type", f"Send text/csv or multipart/form-data, not {content_type}.", status=415
            )
        summary = svc.power_prices_upload(site=site, market=market, data=data, actor=request.user, filename=filename)
        return Response(summary.as_dict(), status=status.HTTP_201_CREATED)


MARKET_CSV = [
    (_("Date (UTC)"), "date"),
    (_("BTC price (USD)"), "btc_price_usd"),
    (_("Difficulty"), "difficulty"),
    (_("Block subsidy (BTC)"), "block_subsidy_btc"),
    (_("Fees per block (BTC)"), "fees_btc_per_block"),
    (_("Fees estimated"), "fees_estimated"),
    (_("Hashprice (USD per TH/s per day)"), "hashprice_usd_per_th_day"),
    (_("Source"), "source"),
]


def market_csv_chunks(days):
    """CSV bytes of hashprice days (the API and the portal's market page share it)."""
    from telemetry.api.telemetry_views import _dict_chunks

    return _dict_chunks(MARKET_CSV, (d.as_dict() for d in days))


class MarketDaysView(CsvCapableAPIView):
    """Market days with their hashprice (USD per TH/s per day before pool fees: price × (subsidy of that day's
    halving era + fees per block) × 86,400 × 10¹² ÷ (difficulty × 2³²)), ``start``/``end`` days inclusive;
    ``?format=csv`` for a file. ``fees_estimated``: the day has no fee figure and a typical level was used."""

    module = Module.ANALYTICS
    permission_classes = [ModuleAccess]

    @extend_schema(
        parameters=[OpenApiParameter("start", OpenApiTypes.DATE), OpenApiParameter("end", OpenApiTypes.DATE)],
        responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): CSV_RESPONSE},
        tags=["market"],
    )
    def get(self, request):
        q = request.query_params
        start, end = _day(q.get("start"), "start"), _day(q.get("end"), "end")
        days = market_data.hashprice_series(start, end)
        if self.wants_csv():
            return streamed_csv(request, market_csv_chunks(days), "market-days")
        return Response({"start": start, "end": end, "results": [d.as_dict() for d in days]})


class MarketLatestView(CsvCapableAPIView):
    """The latest market day and its hashprice, with the data's state (as /api/health reports it)."""

    module = Module.ANALYTICS
    permission_classes = [ModuleAccess]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["market"])
    def get(self, request):
        latest = market_data.latest_market_day()
        return Response(
            {
                "day": market_data.hashprice_of(latest).as_dict() if latest else None,
                "health": market_data.market_health(),
            }
        )
