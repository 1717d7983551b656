"""Statement export for a 10,000-miner hosting client (issue 10's figure: < 10 s): one issued-like invoice of a
31-day month with 310,000 statement rows (10,000 miners × 31 days, written with COPY), exported as the canonical
CSV (``hashinsight.billing.statements.iter_statement_csv`` through ``exports.statement_csv_response``'s chunks) and
as XLSX (``exports.write_statement_xlsx`` into a temporary file, what the download view sends); medians of 3 runs
each, wall time and this process's CPU time, with the file sizes. The XLSX is opened once afterwards with openpyxl
in read-only mode to count its rows (not timed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_statements .venv/bin/python bench/statement_export.py

PostgreSQL only (COPY). The bench data (site ``bench-statements``, client, contract, invoice ``BENCH-STMT-1``)
is replaced on every run; nothing else in the database is touched."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from _setup import ROOT, ensure_database, machine

NUMBER = "BENCH-STMT-1"
RATE = Decimal("0.06")


def setup() -> None:
    url = os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_statements")
    if not url.startswith("postgres"):
        sys.exit("PostgreSQL only: set DATABASE_URL to a PostgreSQL database")
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashinsight.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()


def build(miners: int, days: int):
    """The invoice and its rows: every 29th miner-day has downtime (6 h operator, a reason, a command), every 97th
    1.5 h curtailed, every 1,009th no telemetry at all."""
    from django.db import connection, transaction
    from django.db.models import Sum

    from hashinsight.billing.models import Invoice, InvoiceLine, StatementRow
    from hashinsight.billing.money import round_money
    from sites.models import Customer, HostingContract, Site

    start = date(2026, 1, 1)
    with transaction.atomic():
        old = Invoice.objects.filter(number=NUMBER)
        # The previous run's invoice is issued: its rows are protected (model guard, PostgreSQL trigger). The bench
        # takes it back to draft behind the guard's back (a queryset update) to remove it; never do this elsewhere.
        old.update(status=Invoice.Status.DRAFT)
        with connection.cursor() as cursor:  # 310,000 rows: no per-row delete signals
            cursor.execute(
                "DELETE FROM billing_statementrow"
                " WHERE invoice_id IN (SELECT id FROM billing_invoice WHERE number = %s)",
                [NUMBER],
            )
        InvoiceLine.objects.filter(invoice__in=old).delete()
        old.delete()
        site, _ = Site.objects.get_or_create(
            slug="bench-statements", defaults={"name": "Bench statements site", "capacity_kw": Decimal("40000")}
        )
        customer, _ = Customer.objects.get_or_create(
            slug="bench-statements-client",
            defaults={"company": "Bench Statements Client Ltd.", "hosting_rate_usd_per_kwh": RATE,
                      "contract_start": start},
        )  # fmt: skip
        contract, _ = HostingContract.objects.get_or_create(
            number="BENCH-HC-STMT",
            defaults={"customer": customer, "site": site, "start_date": start, "rate_per_kwh": RATE,
                      "status": HostingContract.Status.ACTIVE},
        )  # fmt: skip
        invoice = Invoice.objects.create(
            number=NUMBER, customer=customer, contract=contract, site=site, period_start=start,
            period_end=start + timedelta(days=days - 1), status=Invoice.Status.DRAFT, miner_count=miners,
            issue_date=start + timedelta(days=days), due_date=start + timedelta(days=days + 15),
            issued_at=datetime.now(UTC), statement_sha256="0" * 64,
        )  # fmt: skip
        columns = (
            "invoice_id, miner_id, day, serial, energy_kwh, uptime_pct, avg_hashrate_ths, downtime_operator_h, "
            "downtime_client_h, downtime_excluded_h, curtailed_h, downtime_reasons, energy_amount, command_ids, "
            "reported"
        )
        with connection.cursor() as cursor, cursor.copy(f"COPY billing_statementrow ({columns}) FROM STDIN") as copy:
            n = 0
            for d in range(days):
                day = start + timedelta(days=d)
                for m in range(miners):
                    n += 1
                    down = n % 29 == 0
                    curtailed = Decimal("1.5") if n % 97 == 0 else Decimal("0")
                    missing = n % 1009 == 0
                    up_h = Decimal("0") if missing else Decimal("24") - (Decimal("6") if down else 0) - curtailed
                    kwh = (Decimal("3.25") * up_h).quantize(Decimal("0.001"))
                    uptime = (up_h / 24 * 100).quantize(Decimal("0.001"))
                    copy.write_row((
                        invoice.pk, 1_000_000 + m, day, f"BSN{m:08d}", kwh, uptime,
                        None if missing else Decimal("110.125"), Decimal("6") if down else Decimal("0"), Decimal("0"),
                        Decimal("24") if missing else Decimal("0"), curtailed,
                        "site_outage" if down else ("no_telemetry" if missing else ""), kwh * RATE,
                        f"[{500000 + n}]" if down else "[]", not missing,
                    ))  # fmt: skip
        totals = StatementRow.objects.filter(invoice=invoice).aggregate(
            kwh=Sum("energy_kwh"), amount=Sum("energy_amount")
        )
        charge = round_money(totals["amount"])
        InvoiceLine.objects.create(
            invoice=invoice, position=1, kind=InvoiceLine.Kind.ENERGY, description="Energy", quantity=totals["kwh"],
            unit="kWh", unit_price=RATE, amount=charge,
        )  # fmt: skip
        Invoice.objects.filter(pk=invoice.pk).update(energy_kwh=totals["kwh"], subtotal=charge, total=charge)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_statementrow")
    return Invoice.objects.select_related("customer", "contract", "site").get(pk=invoice.pk)


def timed(fn) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    size = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--miners", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    setup()
    from django.db import connection

    from hashinsight.billing import exports

    t0 = time.perf_counter()
    invoice = build(args.miners, args.days)
    print(f"built {args.miners * args.days:,} statement rows in {time.perf_counter() - t0:.1f} s")

    def csv_once() -> int:
        return sum(len(chunk) for chunk in exports._csv_chunks(invoice))

    def xlsx_once() -> int:
        with tempfile.TemporaryFile() as fh:
            exports.write_statement_xlsx(invoice, fh)
            return fh.tell()

    results = {}
    for name, fn in (("csv", csv_once), ("xlsx", xlsx_once)):
        runs = [timed(fn) for _ in range(args.runs)]
        connection.close()
        results[name] = runs
        walls = [r[0] for r in runs]
        print(
            f"{name}: median {statistics.median(walls):.2f} s wall (runs {', '.join(f'{w:.2f}' for w in walls)}), "
            f"median CPU {statistics.median(r[1] for r in runs):.2f} s, {runs[0][2] / 1e6:.1f} MB"
        )
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as fh:
        exports.write_statement_xlsx(invoice, fh)
        fh.flush()
        import openpyxl

        ws = openpyxl.load_workbook(fh.name, read_only=True).active
        data_rows = sum(1 for row in ws.iter_rows(values_only=True) if isinstance(row[2], int | float))
        print(f"xlsx check: {data_rows:,} data rows read back with openpyxl")
    load = os.getloadavg()
    print(f"machine: {machine()}; load {load[0]:.2f}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    verdict = all(statistics.median(r[0] for r in runs) < 10 for runs in results.values())
    print(f"figure: statement export for a {args.miners:,}-miner client < 10 s: {'met' if verdict else 'NOT met'}")


if __name__ == "__main__":
    main()
