"""Bulk import of miners from CSV or JSON: every row validated, then all rows written or none.

Rows name things the way a spreadsheet does: ``model`` by catalog code or name, ``site`` by slug,
``zone`` by name within that site, ``customer`` by slug. Lookups are done once per file (a handful
of queries whatever the row count), so 10,000 rows validate in well under a second.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from miners.models import Miner, MinerModel
from sites.models import Zone
from sites.selectors import customer_list, manageable_site_ids, site_list

REQUIRED = ("serial", "model", "site", "zone")
OPTIONAL = (
    "customer", "asset_tag", "rack", "shelf", "slot", "status", "firmware", "pool_url", "pool_worker",
    "ip", "mac", "username", "password",
)  # fmt: skip
COLUMNS = REQUIRED + OPTIONAL
MAX_LENGTH = {
    "serial": 64, "asset_tag": 64, "rack": 32, "firmware": 80, "pool_url": 255, "pool_worker": 120,
    "username": 120, "password": 200,
}  # fmt: skip
# Cells a spreadsheet would evaluate (CSV injection, OWASP); never stored, whatever the column.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
MAX_REPORTED_ERRORS = 1000


@dataclass
class RowError:
    line: int
    field: str
    code: str
    message: str

    def as_dict(self):
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict]]  # (line number, raw cells)
    errors: list[RowError] = field(default_factory=list)


def _too_many(n: int) -> DomainError:
    limit = settings.BULK_IMPORT_MAX_ROWS
    return DomainError(
        "too_many_rows", f"A bulk import takes at most {limit:,} rows; this one has {n:,}.", status=413,
        details={"max_rows": limit, "rows": n},
    )  # fmt: skip


def parse_csv(data: bytes) -> ParsedFile:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DomainError(
            "invalid_encoding", "The file is not valid UTF-8. Save it as 'CSV UTF-8' and try again.",
            details={"byte_offset": exc.start},
        ) from None  # fmt: skip
    if not text.strip():
        raise DomainError("empty_file", "The file has no rows to import.")
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="__extra__")
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DomainError(
            "missing_columns", "The file lacks required columns: " + ", ".join(missing) + ".",
            details={"missing": missing, "required": list(REQUIRED)},
        )  # fmt: skip
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise DomainError(
            "unknown_columns", "Unknown columns: " + ", ".join(unknown) + ".",
            details={"unknown": unknown, "allowed": list(COLUMNS)},
        )  # fmt: skip
    rows, errors = [], []
    try:
        for raw in reader:
            if len(rows) >= settings.BULK_IMPORT_MAX_ROWS:
                raise _too_many(len(rows) + 1 + sum(1 for _ in reader))
            if "__extra__" in raw:
                errors.append(RowError(reader.line_num, "", "extra_cells", "The row has more cells than the header."))
                raw.pop("__extra__")
            if all(not (v or "").strip() for v in raw.values()):
                continue  # blank line
            rows.append((reader.line_num, {k: (v if v is not None else "") for k, v in raw.items()}))
    except csv.Error as exc:
        raise DomainError(
            "malformed_csv", f"The CSV could not be read: {exc}.", details={"line": reader.line_num}
        ) from None
    return ParsedFile(rows=rows, errors=errors)


def parse_json(payload) -> ParsedFile:
    items = payload.get("miners") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise DomainError("malformed_request", 'Send a JSON list of miners, or {"miners": [...]}.')
    if len(items) > settings.BULK_IMPORT_MAX_ROWS:
        raise _too_many(len(items))
    rows, errors = [], []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(RowError(index, "", "not_an_object", "Each row must be a JSON object."))
            continue
        unknown = sorted(set(item) - set(COLUMNS))
        if unknown:
            errors.append(RowError(index, unknown[0], "unknown_field", f"Unknown fields: {', '.join(unknown)}."))
        cells = {}
        for key in COLUMNS:
            value = item.get(key)
            if value is None:
                cells[key] = ""
            elif isinstance(value, bool) or not isinstance(value, str | int):
                errors.append(RowError(index, key, "invalid_type", "Must be a string or an integer."))
                cells[key] = ""
            else:
                cells[key] = str(value)
        rows.append((index, cells))
    return ParsedFile(rows=rows, errors=errors)


class _Lookups:
    """Everything the rows refer to, read once, limited to what the importing user may use."""

    def __init__(self, actor):
        self.models_by_code = {}
        names: dict[str, list[MinerModel]] = {}
        for m in MinerModel.objects.all():
            self.models_by_code[m.code.lower()] = m
            self.models_by_code[str(m).lower()] = m
            names.setdefault(m.name.lower(), []).append(m)
        # A bare name works only when the catalog has a single bin of that model.
        self.models_by_name = {k: v[0] for k, v in names.items() if len(v) == 1}
        self.sites = {s.slug: s for s in site_list(user=actor)}
        manageable = manageable_site_ids(user=actor)
        self.manageable = set(self.sites.values()) if manageable is None else {
            s for s in self.sites.values() if s.pk in manageable
        }  # fmt: skip
        self.zones = {
            (z.site_id, z.name.lower()): z for z in Zone.objects.filter(site_id__in=[s.pk for s in self.sites.values()])
        }
        self.customers = {c.slug: c for c in customer_list(user=actor)}

    def model(self, value: str):
        key = value.strip().lower()
        return self.models_by_code.get(key) or self.models_by_name.get(key)


def _validate_row(line: int, cells: dict, lookups: _Lookups, errors: list[RowError]) -> Miner | None:
    start = len(errors)

    def err(field_name, code, message):
        errors.append(RowError(line, field_name, code, message))

    for key, value in cells.items():
        if "\x00" in value:  # PostgreSQL refuses NUL in text; report it here, not as a 500 at insert
            err(key, "nul_character", "Cells may not contain NUL characters.")
        elif value and value.startswith(FORMULA_START) and not _is_number(value):
            err(key, "formula_cell", "Cells starting with =, +, -, @ or a tab are refused (spreadsheet formulas).")
    values = {k: (cells.get(k) or "").strip() for k in COLUMNS}
    for key in REQUIRED:
        if not values[key]:
            err(key, "required", "This column is required.")
    for key, limit in MAX_LENGTH.items():
        if len(values[key]) > limit:
            err(key, "too_long", f"At most {limit} characters.")

    model = lookups.model(values["model"]) if values["model"] else None
    if values["model"] and model is None:
        err("model", "unknown_model", f"No miner model {values['model']!r} in the catalog.")
    site = lookups.sites.get(values["site"]) if values["site"] else None
    if values["site"] and site is None:
        err("site", "unknown_site", f"No site with slug {values['site']!r}.")
    elif site is not None and site not in lookups.manageable:
        err("site", "site_read_only", "You may not add miners to this site.")
    zone = None
    if site is not None and values["zone"]:
        zone = lookups.zones.get((site.pk, values["zone"].lower()))
        if zone is None:
            err("zone", "unknown_zone", f"Site {site.slug!r} has no zone {values['zone']!r}.")
    customer = None
    if values["customer"]:
        customer = lookups.customers.get(values["customer"])
        if customer is None:
            err("customer", "unknown_customer", f"No hosting client with slug {values['customer']!r}.")
    status = values["status"] or Miner.Status.ACTIVE
    if status not in Miner.Status.values:
        err("status", "invalid_choice", f"Status must be one of {', '.join(Miner.Status.values)}.")
    numbers = {}
    for key in ("shelf", "slot"):
        if values[key]:
            if not values[key].isdigit() or int(values[key]) > 32767:
                err(key, "invalid_integer", "Must be a whole number from 0 to 32767.")
            else:
                numbers[key] = int(values[key])
    if values["ip"]:
        try:
            values["ip"] = str(ipaddress.ip_address(values["ip"]))
        except ValueError:
            err("ip", "invalid_ip", "Not a valid IPv4 or IPv6 address.")
    if values["mac"]:
        if not MAC_RE.match(values["mac"]):
            err("mac", "invalid_mac", "Not a MAC address like 00:1A:2B:3C:4D:5E.")
        values["mac"] = values["mac"].upper().replace("-", ":")
    if len(errors) > start:
        return None
    miner = Miner(
        site=site, zone=zone, customer=customer, model=model, serial=values["serial"],
        asset_tag=values["asset_tag"], rack=values["rack"], shelf=numbers.get("shelf"), slot=numbers.get("slot"),
        status=status, firmware=values["firmware"], pool_url=values["pool_url"], pool_worker=values["pool_worker"],
    )  # fmt: skip
    miner.set_identity(ip=values["ip"], mac=values["mac"], username=values["username"], password=values["password"])
    return miner


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_uniques(miners: list[tuple[int, Miner]], errors: list[RowError]) -> None:
    """Serials, asset tags and rack positions must be unique in the file and against the database."""
    seen_serial: dict[str, int] = {}
    seen_tag: dict[str, int] = {}
    seen_pos: dict[tuple, int] = {}
    for line, m in miners:
        if m.serial in seen_serial:
            errors.append(
                RowError(line, "serial", "duplicate_in_file", f"Serial repeats line {seen_serial[m.serial]}.")
            )
        seen_serial.setdefault(m.serial, line)
        if m.asset_tag:
            if m.asset_tag in seen_tag:
                errors.append(
                    RowError(line, "asset_tag", "duplicate_in_file", f"Asset tag repeats line {seen_tag[m.asset_tag]}.")
                )
            seen_tag.setdefault(m.asset_tag, line)
        if m.rack and m.shelf is not None and m.slot is not None:
            pos = (m.site_id, m.rack, m.shelf, m.slot)
            if pos in seen_pos:
                errors.append(RowError(line, "slot", "duplicate_in_file", f"Position repeats line {seen_pos[pos]}."))
            seen_pos.setdefault(pos, line)
    # Existence checks in chunks: SQLite caps bound parameters per statement.
    existing_serials = _existing(Miner.objects.all(), "serial", list(seen_serial))
    existing_tags = _existing(Miner.objects.all(), "asset_tag", list(seen_tag))
    for line, m in miners:
        if m.serial in existing_serials:
            errors.append(RowError(line, "serial", "duplicate_serial", "A miner with this serial already exists."))
        if m.asset_tag and m.asset_tag in existing_tags:
            errors.append(
                RowError(line, "asset_tag", "duplicate_asset_tag", "A miner with this asset tag already exists.")
            )
    if seen_pos:
        site_ids = {p[0] for p in seen_pos}
        taken = set(
            Miner.objects.filter(site_id__in=site_ids, shelf__isnull=False, slot__isnull=False)
            .exclude(rack="")
            .values_list("site_id", "rack", "shelf", "slot")
        )
        for pos, line in seen_pos.items():
            if pos in taken:
                errors.append(RowError(line, "slot", "position_taken", "Another miner already occupies this position."))


def _existing(qs, field_name: str, values: list[str], chunk: int = 5000) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(values), chunk):
        found.update(qs.filter(**{f"{field_name}__in": values[i : i + chunk]}).values_list(field_name, flat=True))
    return found


def miners_bulk_import(*, actor, parsed: ParsedFile) -> list[Miner]:
    """Validate every row; if any is wrong raise ``bulk_validation_failed`` with per-line errors and
    write nothing; otherwise create all the miners in one transaction."""
    if not parsed.rows and not parsed.errors:
        raise DomainError("empty_file", "The file has no rows to import.")
    lookups = _Lookups(actor)
    errors = list(parsed.errors)
    miners: list[tuple[int, Miner]] = []
    for line, cells in parsed.rows:
        miner = _validate_row(line, cells, lookups, errors)
        if miner is not None:
            miners.append((line, miner))
    _check_uniques(miners, errors)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise DomainError(
            "bulk_validation_failed",
            f"{len(errors)} problem(s) in the file; nothing was imported.",
            details={"error_count": len(errors), "errors": [e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]]},
        )
    try:
        with transaction.atomic():
            created = Miner.objects.bulk_create([m for _, m in miners], batch_size=1000)
            ids = [m.pk for m in created if m.pk is not None]
            outbox.publish(
                "miners.bulk_imported",
                aggregate=f"user:{actor.pk}",
                payload={
                    "site_ids": sorted({m.site_id for m in created}),
                    "customer_ids": sorted({m.customer_id for m in created if m.customer_id}),
                    "count": len(created), "first_id": min(ids, default=None), "last_id": max(ids, default=None),
                    "actor_id": actor.pk,
                },
            )  # fmt: skip
            return created
    except IntegrityError:
        # Another writer took a serial, tag or position between our checks and the insert.
        raise DomainError(
            "conflict", "Another change landed while importing; nothing was imported. Try again.", status=409
        ) from None
