"""The canonical statement file of an invoice: the CSV a client downloads, and the bytes whose SHA-256 is sealed into
the invoice when it is issued, recorded as a proof leaf and checked by ``manage.py verify_statement FILE PROOF``.

It must come out byte-identical every time for an issued invoice (its rows never change), so the format is fixed:

- UTF-8, no byte-order mark, fields separated by ``,``, lines ended by ``\\n``, quoted only when needed (Python's
  ``csv`` minimal quoting);
- a header block of ``key,value`` lines: ``statement``, ``invoice`` (the number, ``DRAFT-<id>`` before issue),
  ``client``, ``contract``, ``site``, ``period_start``, ``period_end``, ``currency``, ``tariff``, ``rate_per_kwh``,
  ``revenue_share_pct``, then an empty line;
- a column header, then one row per miner-day sorted by day, then serial (binary order, the same on every
  database);
- decimals in plain notation with fixed places: energy, uptime, hashrate and hours 3, the day's charge 6; an
  absent hashrate (no daily row) is an empty field; ``reported`` is ``1``/``0``; reasons as stored
  (comma-separated codes); command ids joined by ``;``.

Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``
(the same rule as the list pages' CSV, fixed in this module so the bytes never change)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from decimal import Decimal

from django.db.models.functions import Collate

from hashinsight.billing.models import Invoice, StatementRow

FORMAT = "hashinsight-statement/1"
CHUNK_ROWS = 2000
COLUMNS = (
    "day", "serial", "energy_kwh", "uptime_pct", "avg_hashrate_ths", "downtime_operator_h", "downtime_client_h",
    "downtime_excluded_h", "curtailed_h", "downtime_reasons", "energy_amount", "command_ids", "reported",
)  # fmt: skip
_FIELDS = (
    "day", "serial", "energy_kwh", "uptime_pct", "avg_hashrate_ths", "downtime_operator_h", "downtime_client_h",
    "downtime_excluded_h", "curtailed_h", "downtime_reasons", "energy_amount", "command_ids", "reported",
)  # fmt: skip
_PLACES = {"energy_amount": Decimal("0.000001")}
_THREE = Decimal("0.001")
# Fixed here (not shared with the list pages' CSV helper): a change would change the bytes of issued statements.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _dec(value, places: Decimal = _THREE) -> str:
    if value is None:
        return ""
    return format(Decimal(value).quantize(places), "f")


def _header(invoice: Invoice) -> list[list[str]]:
    contract = invoice.contract
    return [
        ["statement", FORMAT],
        ["invoice", invoice.number or f"DRAFT-{invoice.pk}"],
        ["client", safe_cell(invoice.customer.company)],
        ["contract", safe_cell(contract.number)],
        ["site", safe_cell(invoice.site.name)],
        ["period_start", invoice.period_start.isoformat()],
        ["period_end", invoice.period_end.isoformat()],
        ["currency", invoice.currency],
        ["tariff", contract.tariff_kind],
        ["rate_per_kwh", format(Decimal(contract.rate_per_kwh), "f")],
        ["revenue_share_pct", format(Decimal(contract.revenue_share_pct), "f")],
        [],
        list(COLUMNS),
    ]


def _row(values: tuple) -> list[str]:
    row = dict(zip(_FIELDS, values, strict=True))
    out = []
    for name in _FIELDS:
        value = row[name]
        if name == "day":
            out.append(value.isoformat())
        elif name == "serial":
            out.append(safe_cell(value))
        elif name == "downtime_reasons":
            out.append(value or "")
        elif name == "command_ids":
            out.append(";".join(str(v) for v in (value or [])))
        elif name == "reported":
            out.append("1" if value else "0")
        else:
            out.append(_dec(value, _PLACES.get(name, _THREE)))
    return out


def iter_statement_csv(invoice: Invoice) -> Iterator[bytes]:
    """The statement file as byte chunks (the header, then ``CHUNK_ROWS`` rows each), read with a cursor."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line in _header(invoice):
        writer.writerow(line)
    yield buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    qs = (
        StatementRow.objects.filter(invoice_id=invoice.pk)
        .order_by("day", Collate("serial", "C") if _is_postgres() else "serial")
        .values_list(*_FIELDS)
    )
    for n, values in enumerate(qs.iterator(chunk_size=CHUNK_ROWS), start=1):
        writer.writerow(_row(values))
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def statement_bytes(invoice: Invoice) -> bytes:
    return b"".join(iter_statement_csv(invoice))


def statement_sha256(invoice: Invoice) -> str:
    digest = hashlib.sha256()
    for chunk in iter_statement_csv(invoice):
        digest.update(chunk)
    return digest.hexdigest()


def statement_filename(invoice: Invoice) -> str:
    return f"statement-{invoice.number or f'draft-{invoice.pk}'}.csv"


def _is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
