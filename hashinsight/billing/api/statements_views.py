"""The statement API: ``/api/v1/invoices/{id}/statement.xlsx`` (the XLSX export), ``…/statement/rows`` (the
statement's miner-days as JSON pages, each with links to the telemetry and the commands behind its figures) and
``…/statement/commands/{command_id}`` (a command a row names, for readers who have no access to the commands API).
The canonical CSV, the invoice list and detail are the invoicing part's (``invoices_urls``).

Module FINANCE, read; every path goes through ``hashinsight.billing.selectors.invoice_get`` first, so a hidden
invoice is a 404 for every method and an invoice of another hosting client never shows (a client sees its own
issued invoices only). An expiring e-mail link (``?t=``) is accepted for the export, still for the logged-in user it
names only (``hashinsight.core.signed_links``)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing import exports, selectors
from hashinsight.billing.models import Invoice
from hashinsight.core.api.pagination import LimitOffsetPagination

ROW_FIELDS = (
    "miner_id", "serial", "day", "energy_kwh", "uptime_pct", "avg_hashrate_ths", "downtime_operator_h",
    "downtime_client_h", "downtime_excluded_h", "curtailed_h", "downtime_reasons", "energy_amount", "command_ids",
    "reported",
)  # fmt: skip


class StatementView(APIView):
    module = Module.FINANCE
    permission_classes = [ModuleAccess]

    def invoice(self, request, pk: str) -> Invoice:
        return selectors.invoice_get(user=request.user, pk=int(pk))


class StatementRowQuerySerializer(serializers.Serializer):
    miner = serializers.CharField(
        required=False, max_length=65, help_text="a serial number, or a prefix ending in * (e.g. SN0001*)"
    )
    day = serializers.DateField(required=False, help_text="YYYY-MM-DD, a day of the invoice's period")
    downtime = serializers.BooleanField(
        required=False, default=False, help_text="only rows with downtime, curtailment or no telemetry"
    )

    def validate_miner(self, value):
        if "\x00" in value:
            raise serializers.ValidationError(_("A serial cannot contain NUL characters."))
        return value


class StatementRowLinksSerializer(serializers.Serializer):
    telemetry = serializers.CharField(help_text="the telemetry API's daily row of this miner and day")
    telemetry_page = serializers.CharField(help_text="the miner's telemetry page on that day")
    commands = serializers.ListField(child=serializers.CharField(), help_text="the commands behind the row's figures")


class StatementRowSerializer(serializers.Serializer):
    """One miner-day. Decimals as strings with their places; hours in h, energy in kWh, the charge unrounded."""

    miner = serializers.IntegerField()
    serial = serializers.CharField()
    day = serializers.DateField()
    energy_kwh = serializers.CharField()
    uptime_pct = serializers.CharField()
    avg_hashrate_ths = serializers.CharField(allow_null=True)
    downtime_operator_h = serializers.CharField()
    downtime_client_h = serializers.CharField()
    downtime_excluded_h = serializers.CharField()
    curtailed_h = serializers.CharField()
    downtime_reasons = serializers.ListField(child=serializers.CharField())
    energy_amount = serializers.CharField(help_text="the day's energy charge in the invoice's currency, unrounded")
    currency = serializers.CharField()
    command_ids = serializers.ListField(child=serializers.IntegerField())
    reported = serializers.BooleanField(help_text="false: no telemetry that day (all downtime)")
    links = StatementRowLinksSerializer()


def _text(value) -> str | None:
    return None if value is None else str(value)


def row_links(*, invoice: Invoice, miner_id: int, day, command_ids, commands_api: bool) -> dict:
    """Where a row's figures came from. ``commands_api``: the reader may use the commands API (CURTAILMENT);
    otherwise the commands are read through this statement (``StatementCommandView``)."""
    telemetry = reverse("telemetry-daily") + "?" + urlencode({"miner": miner_id, "from": day, "to": day})
    page = reverse("portal:telemetry-miner", kwargs={"pk": miner_id}) + "?" + urlencode({"day": day})
    if commands_api:
        commands = [reverse("command-detail", kwargs={"pk": c}) for c in command_ids]
    else:
        commands = [
            reverse("invoice-statement-command", kwargs={"pk": invoice.pk, "command_id": c}) for c in command_ids
        ]
    return {"telemetry": telemetry, "telemetry_page": page, "commands": commands}


def serialize_rows(*, invoice: Invoice, rows, user) -> list[dict]:
    commands_api = has_access(user, Module.CURTAILMENT, Access.READ)
    out = []
    for r in rows:
        ids = [int(c) for c in (r["command_ids"] or [])]
        out.append({
            "miner": r["miner_id"], "serial": r["serial"], "day": r["day"].isoformat(),
            "energy_kwh": str(r["energy_kwh"]), "uptime_pct": str(r["uptime_pct"]),
            "avg_hashrate_ths": _text(r["avg_hashrate_ths"]),
            "downtime_operator_h": str(r["downtime_operator_h"]), "downtime_client_h": str(r["downtime_client_h"]),
            "downtime_excluded_h": str(r["downtime_excluded_h"]), "curtailed_h": str(r["curtailed_h"]),
            "downtime_reasons": [x for x in r["downtime_reasons"].split(",") if x],
            "energy_amount": str(r["energy_amount"]), "currency": invoice.currency, "command_ids": ids,
            "reported": bool(r["reported"]),
            "links": row_links(invoice=invoice, miner_id=r["miner_id"], day=r["day"], command_ids=ids,
                               commands_api=commands_api),
        })  # fmt: skip
    return out


class StatementRowsView(StatementView):
    """The statement's miner-days in the statement's order (day, serial), ``limit``/``offset`` pages (20, at most
    100), filtered by serial, day and downtime only."""

    @extend_schema(
        parameters=[StatementRowQuerySerializer], responses={200: StatementRowSerializer(many=True)}, tags=["invoices"],
        operation_id="invoice_statement_rows",
    )  # fmt: skip
    def get(self, request, pk: str):
        invoice = self.invoice(request, pk)
        params = StatementRowQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        qs = selectors.statement_rows_filtered(
            invoice=invoice, serial=p.get("miner"), day=p.get("day"), downtime_only=p["downtime"]
        ).values(*ROW_FIELDS)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(serialize_rows(invoice=invoice, rows=page, user=request.user))


class StatementXlsxView(StatementView):
    """The statement as an Excel workbook: header block (client, contract, period, totals), frozen column titles
    with units, one row per miner-day. The canonical (hashed) file is the CSV."""

    @extend_schema(
        responses={(200, exports.XLSX_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY)}, tags=["invoices"],
        operation_id="invoice_statement_xlsx",
    )  # fmt: skip
    def get(self, request, pk: str):
        invoice = self.invoice(request, pk)
        token = request.query_params.get("t")
        if token is not None:  # an e-mailed link: for this invoice and this user only (expired 403, else 404)
            exports.check_statement_link(token[:2000], invoice=invoice, user=request.user)
        return exports.statement_xlsx_response(invoice)


class StatementCommandSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    type_label = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    created_at = serializers.DateTimeField()
    dispatched_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    miner_days = serializers.ListField(child=serializers.DictField(), help_text="this statement's rows it explains")


class StatementCommandView(StatementView):
    """A command one of the statement's rows names (downtime or curtailment it explains)."""

    @extend_schema(
        responses={200: StatementCommandSerializer}, tags=["invoices"], operation_id="invoice_statement_command"
    )
    def get(self, request, pk: str, command_id: str):
        invoice = self.invoice(request, pk)
        return Response(
            StatementCommandSerializer(selectors.statement_command(invoice=invoice, command_id=int(command_id))).data
        )
