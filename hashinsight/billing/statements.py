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
- every number in plain notation at fixed places, rounded half-up to them whatever the value's own exponent (a
  contract fresh from the form holds ``0.06``, the same contract read back ``0.06000``: both are written
  ``0.06000``): the rate per kWh 5, the revenue share 2, energy, uptime, hashrate and hours 3, the day's charge 6;
  an absent hashrate (no daily row) is an empty field; ``reported`` is ``1``/``0``; reasons as stored
  (comma-separated codes); command ids joined by ``;``.

On PostgreSQL the database writes the row numbers' text itself (``round(x, places)::text``: no ``Decimal`` per
cell, 2.5× cheaper); on SQLite Python quantizes them. The tests compare both against the same fixed bytes.

Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``
(the same rule as the list pages' CSV, fixed in this module so the bytes never change)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import DecimalField, F, Func, TextField, Value
from django.db.models.functions import Cast, Collate

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
_THREE = Decimal("0.001")
_SIX = Decimal("0.000001")
# Fixed here, not read from the models: a change of a field's places must not change the bytes of issued statements.
_PLACES = {
    "energy_kwh": 3, "uptime_pct": 3, "avg_hashrate_ths": 3, "downtime_operator_h": 3, "downtime_client_h": 3,
    "downtime_excluded_h": 3, "curtailed_h": 3, "energy_amount": 6,
}  # fmt: skip
RATE_PLACES = Decimal("0.00001")  # HostingContract.rate_per_kwh
SHARE_PLACES = Decimal("0.01")  # HostingContract.revenue_share_pct
# Fixed here (not shared with the list pages' CSV helper): a change would change the bytes of issued statements.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def fixed(value, places: Decimal) -> str:
    """``value`` at exactly ``places`` (half-up), in plain notation: the same text for ``0.06``, ``0.06000``,
    ``6E-2`` or the float 0.06; empty for None; never ``-0``."""
    if value is None:
        return ""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))  # a float by its shortest repr, not its binary expansion
    value = value.quantize(places, rounding=ROUND_HALF_UP)
    return format(value.copy_abs() if value.is_zero() else value, "f")


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
        ["rate_per_kwh", fixed(contract.rate_per_kwh, RATE_PLACES)],
        ["revenue_share_pct", fixed(contract.revenue_share_pct, SHARE_PLACES)],
        [],
        list(COLUMNS),
    ]


def _commands(text: str | None) -> str:
    """The JSON array's text (``[5, 9]``) → ``5;9``, without decoding it (ids are integers)."""
    if not text or text in ("[]", "null"):
        return ""
    if '"' in text:  # not expected (the service writes integers); decoded to be safe, as str() of each
        import json

        return ";".join(str(v) for v in json.loads(text))
    return "".join(text[1:-1].split()).replace(",", ";")


def _rows_queryset(invoice: Invoice, pg: bool):
    qs = StatementRow.objects.filter(invoice_id=invoice.pk).order_by("day", Collate("serial", "C") if pg else "serial")
    qs = qs.annotate(commands_text=Cast("command_ids", TextField()))
    if not pg:
        return qs.values_list(*(f if f != "command_ids" else "commands_text" for f in _FIELDS))
    # PostgreSQL writes each number's text at its fixed places (numeric rounds half away from zero: half-up here).
    numbers = {
        f"{name}_text": Cast(Func(F(name), Value(places), function="round", output_field=DecimalField()), TextField())
        for name, places in _PLACES.items()
    }
    qs = qs.annotate(**numbers)
    return qs.values_list(
        *(f"{f}_text" if f in _PLACES else "commands_text" if f == "command_ids" else f for f in _FIELDS)
    )


def iter_statement_csv(invoice: Invoice) -> Iterator[bytes]:
    """The statement file as byte chunks (the header, then ``CHUNK_ROWS`` rows each), read with a cursor (on
    PostgreSQL iterate it inside a transaction, or the cursor is a WITH HOLD one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line in _header(invoice):
        writer.writerow(line)
    yield buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    pg = _is_postgres()
    if pg:

        def num(v, places=None):  # already the text at its places (or None)
            return "" if v is None else v
    else:
        num = fixed
    for n, (day, serial, e, u, h, op, cl, ex, cu, reasons, amount, cmds, rep) in enumerate(
        _rows_queryset(invoice, pg).iterator(chunk_size=CHUNK_ROWS), start=1
    ):
        writer.writerow((
            day.isoformat(), safe_cell(serial), num(e, _THREE), num(u, _THREE), num(h, _THREE), num(op, _THREE),
            num(cl, _THREE), num(ex, _THREE), num(cu, _THREE), reasons or "", num(amount, _SIX), _commands(cmds),
            "1" if rep else "0",
        ))  # fmt: skip
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def statement_bytes(invoice: Invoice) -> bytes:
    with transaction.atomic():  # a plain server-side cursor on PostgreSQL, not a WITH HOLD one
        return b"".join(iter_statement_csv(invoice))


def statement_sha256(invoice: Invoice) -> str:
    digest = hashlib.sha256()
    with transaction.atomic():
        for chunk in iter_statement_csv(invoice):
            digest.update(chunk)
    return digest.hexdigest()


def statement_filename(invoice: Invoice) -> str:
    return f"statement-{invoice.number or f'draft-{invoice.pk}'}.csv"


def _is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
