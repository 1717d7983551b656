"""Loads the shipped ASIC catalog (miners/data/asic_models.csv) into MinerModel rows."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from django.utils.text import slugify

CATALOG = Path(__file__).parent / "data" / "asic_models.csv"


def _release_date(value: str) -> str | None:
    # Some sources give only a month ("2024-10"); we store the first day of it.
    if not value:
        return None
    return value if len(value) == 10 else f"{value}-01"


def catalog_rows(path: Path = CATALOG) -> list[dict]:
    """One row per (vendor, model, TH/s) bin; where sources repeat a bin, the first row wins."""
    seen, rows = set(), []
    with path.open(newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            hashrate = Decimal(raw["hashrate_ths"]).quantize(Decimal("0.01"))
            key = (raw["manufacturer"], raw["model"], hashrate)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "vendor": raw["manufacturer"],
                    "name": raw["model"],
                    "code": slugify(
                        f"{raw['model'].replace('+', ' plus')}-{hashrate.normalize():f}t".replace(".", "-")
                    ),
                    "hashrate_ths": hashrate,
                    "power_w": Decimal(raw["power_w"]),
                    "cooling": raw["cooling"] or "air",
                    "release_date": _release_date(raw["release_date"]),
                    "source": f"{raw['source_repo']}:{raw['source_path']}@{raw['source_commit'][:12]}",
                }
            )
    return rows


def load_catalog(MinerModel) -> int:  # the historical model, when called from a migration
    """Create missing catalog rows and refresh existing ones (by code); returns rows written."""
    rows = catalog_rows()
    existing = {m.code: m for m in MinerModel.objects.all()}
    new, changed = [], []
    for row in rows:
        current = existing.get(row["code"])
        if current is None:
            new.append(MinerModel(**row))
        else:
            for k, v in row.items():
                setattr(current, k, v)
            changed.append(current)
    MinerModel.objects.bulk_create(new)
    if changed:
        MinerModel.objects.bulk_update(changed, [k for k in rows[0] if k != "code"])
    return len(new) + len(changed)
