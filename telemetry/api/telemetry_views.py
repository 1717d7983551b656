"""The telemetry query API, ``/api/v1/telemetry/…``: a site's live list (keyset pages), its dashboard
summary, history per miner and per site, daily reports, and CSV exports of each (``?format=csv``,
streamed). Every read goes through ``telemetry.telemetry_selectors``, which applies the user's scope: a
hosting client sees its own miners only, a hidden site or miner is a 404."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView
from hashinsight.portal.tables import CsvColumn, csv_chunks, safe_cell, streamed_csv
from telemetry import telemetry_selectors as sel
from telemetry.api.telemetry_serializers import (
    DailyQuerySerializer,
    DailyRowSerializer,
    HistoryQuerySerializer,
    LivePageSerializer,
    LiveQuerySerializer,
    MinerHistorySerializer,
    SiteHistorySerializer,
    SummarySerializer,
)
from telemetry.models import Daily, SampleStatus

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")


class TelemetryView(CsvCapableAPIView):
    module = Module.HOSTING
    permission_classes = [ModuleAccess]


def _dict_chunks(columns: Sequence[tuple[str, str]], rows: Iterable[dict], chunk: int = 2000) -> Iterator[bytes]:
    """CSV bytes of computed rows (history points); ``columns`` are (header with unit, key)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([str(h) for h, _k in columns])
    for n, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(row.get(k)) for _h, k in columns])
        if n % chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _ths(ghs):
    return None if ghs is None else round(ghs / 1000, 3)


LIVE_CSV = [
    CsvColumn(_("Serial"), "miner__serial"),
    CsvColumn(_("Zone"), "miner__zone__name"),
    CsvColumn(_("Hosting client"), "miner__customer__company"),
    CsvColumn(_("Status"), "state", display=dict(SampleStatus.choices)),
    CsvColumn(_("Last seen (UTC)"), "last_seen"),
    CsvColumn(_("Hashrate, 5-min average (TH/s)"), "hashrate_ghs", display=_ths),
    CsvColumn(_("Nominal hashrate (TH/s)"), "miner__model__hashrate_ths"),
    CsvColumn(_("Max chip temperature (°C)"), "temp_chip_max_c"),
    CsvColumn(_("Inlet temperature (°C)"), "temp_inlet_c"),
    CsvColumn(_("Outlet temperature (°C)"), "temp_outlet_c"),
    CsvColumn(_("Power (W)"), "power_w"),
]


class SiteLiveView(TelemetryView):
    """A site's live status, one row per miner you may see, filtered and sorted, in keyset pages:
    follow ``next`` (or pass ``cursor=next_cursor``) with the same filters and sort."""

    @extend_schema(parameters=[LiveQuerySerializer], responses={200: LivePageSerializer}, tags=["telemetry"])
    def get(self, request, site_id: int):
        params = LiveQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        qs = sel.live_rows(user=request.user, site_id=site_id)
        qs = sel.filter_live(
            qs,
            status=p.get("status"),
            zone=p.get("zone"),
            customer=p.get("customer"),
            temp_above=p.get("temp_above"),
            temp_below=p.get("temp_below"),
            hashrate_below_ths=p.get("hashrate_below_ths"),
        )
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(LIVE_CSV, sel.live_ordered(qs, sort=p["sort"])), "live")
        page = sel.live_page(qs, sort=p["sort"], cursor=p.get("cursor"), limit=p["limit"])
        next_url = None
        if page.next_cursor:
            query = request.query_params.copy()
            query["cursor"] = page.next_cursor
            next_url = f"{request.path}?{query.urlencode()}"
        return Response({"sort": page.sort, "next_cursor": page.next_cursor, "next": next_url, "results": page.rows})


class SiteSummaryView(TelemetryView):
    """The site dashboard's figures (for a hosting client: its own miners at the site only)."""

    @extend_schema(responses={200: SummarySerializer}, tags=["telemetry"])
    def get(self, request, site_id: int):
        cached = sel.site_summary(user=request.user, site_id=site_id)
        return Response(cached.value, headers={"X-Cache": cached.state})


MINER_HISTORY_CSV = [
    (_("Time (UTC)"), "t"),
    (_("Hashrate (TH/s)"), "hashrate_ths"),
    (_("Max chip temperature (°C)"), "temp_chip_max_c"),
    (_("Peak chip temperature (°C)"), "temp_chip_peak_c"),
    (_("Inlet temperature (°C)"), "temp_inlet_c"),
    (_("Outlet temperature (°C)"), "temp_outlet_c"),
    (_("Power (W)"), "power_w"),
    (_("Fan speed (rpm)"), "fan_rpm"),
    (_("Uptime (fraction)"), "uptime_fraction"),
    (_("Energy (kWh)"), "energy_kwh"),
]
SITE_HISTORY_CSV = [
    (_("Time (UTC)"), "t"),
    (_("Fleet hashrate (TH/s)"), "hashrate_ths"),
    (_("Fleet power (W)"), "power_w"),
    (_("Average max chip temperature (°C)"), "temp_chip_max_c"),
    (_("Peak chip temperature (°C)"), "temp_chip_peak_c"),
    (_("Uptime (fraction)"), "uptime_fraction"),
    (_("Energy (kWh)"), "energy_kwh"),
    (_("Miners reporting"), "miners_reporting"),
    (_("Miners hashing"), "miners_hashing"),
]


def _history_range(request, *, site_level: bool) -> sel.Range:
    q = request.query_params
    return sel.history_range(
        start=q.get("from"), end=q.get("to"), resolution=q.get("resolution"), site_level=site_level
    )


class MinerHistoryView(TelemetryView):
    """A miner's history. ``resolution=auto`` picks raw samples for up to 24 h, 5-minute windows up to
    90 days, daily rows beyond; at most 2,500 points (wider buckets are averaged by the database)."""

    @extend_schema(parameters=[HistoryQuerySerializer], responses={200: MinerHistorySerializer}, tags=["telemetry"])
    def get(self, request, miner_id: int):
        rng = _history_range(request, site_level=False)
        data = sel.miner_history(user=request.user, miner_id=miner_id, rng=rng)
        if self.wants_csv():
            return streamed_csv(request, _dict_chunks(MINER_HISTORY_CSV, data["points"]), f"miner-{data['serial']}")
        return Response(data)


class SiteHistoryView(TelemetryView):
    """A site's fleet history from the site rollups; for a hosting client, the sum of its own miners."""

    @extend_schema(parameters=[HistoryQuerySerializer], responses={200: SiteHistorySerializer}, tags=["telemetry"])
    def get(self, request, site_id: int):
        rng = _history_range(request, site_level=True)
        data = sel.site_history(user=request.user, site_id=site_id, rng=rng)
        if self.wants_csv():
            return streamed_csv(request, _dict_chunks(SITE_HISTORY_CSV, data["points"]), f"site-{site_id}-history")
        return Response(data)


DAILY_CSV = [
    CsvColumn(_("Day"), "day"),
    CsvColumn(_("Serial"), "miner__serial"),
    CsvColumn(_("Site"), "site_id"),
    CsvColumn(_("Hosting client"), "customer_id"),
    CsvColumn(_("Average hashrate (TH/s)"), "avg_hashrate_ths"),
    CsvColumn(_("Energy (kWh)"), "energy_kwh"),
    CsvColumn(_("Uptime (%)"), "uptime_pct"),
    CsvColumn(_("Maximum chip temperature (°C)"), "max_temp_chip_c"),
    CsvColumn(_("Restarts"), "restarts"),
    CsvColumn(_("Accepted shares"), "accepted_shares"),
    CsvColumn(_("Rejected shares"), "rejected_shares"),
]


class DailyReportView(TelemetryView, GenericAPIView):
    """Daily rows per miner (newest first), for what you may see; ``from``/``to`` are days (at most 400)."""

    serializer_class = DailyRowSerializer
    queryset = Daily.objects.none()  # for the schema; rows come from the selector

    @extend_schema(
        parameters=[DailyQuerySerializer], responses={200: DailyRowSerializer(many=True)}, tags=["telemetry"]
    )
    def get(self, request):
        params = DailyQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        qs = sel.daily_rows(
            user=request.user,
            site=p.get("site"),
            customer=p.get("customer"),
            miner=p.get("miner"),
            start=request.query_params.get("from"),
            end=request.query_params.get("to"),
        )
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(DAILY_CSV, qs), "daily")
        page = self.paginate_queryset(qs.values(*sel.DAILY_FIELDS))
        return self.get_paginated_response(DailyRowSerializer(page, many=True).data)


telemetry_urls = [
    path("telemetry/sites/<int:site_id>/live", SiteLiveView.as_view(), name="telemetry-site-live"),
    path("telemetry/sites/<int:site_id>/summary", SiteSummaryView.as_view(), name="telemetry-site-summary"),
    path("telemetry/sites/<int:site_id>/history", SiteHistoryView.as_view(), name="telemetry-site-history"),
    path("telemetry/miners/<int:miner_id>/history", MinerHistoryView.as_view(), name="telemetry-miner-history"),
    path("telemetry/daily", DailyReportView.as_view(), name="telemetry-daily"),
]
