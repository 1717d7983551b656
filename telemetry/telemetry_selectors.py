"""Telemetry reads, already restricted to what a user may see (the one permission path:
``sites.selectors.scope_of``). A hosting client sees its own miners' rows only (the miner's current
client for the live layer; on the raw, 5-minute and daily layers the client each row belonged to), a
site owner the sites granted to them; anything else answers 404, exactly like something that does not exist.

Online or offline comes from the age of ``last_seen``: a miner that has not reported for
``live_offline_after()`` (setting ``TELEMETRY_LIVE_OFFLINE_AFTER_S``, 300 s by default) is offline
whatever its last status said. ``state`` (annotated by ``live_rows``) is that effective status.

History picks its layer from the range and the resolution asked: raw samples (kept 24 h) for a day,
5-minute windows (kept 90 days) up to 90 days, daily rows beyond; never more than ``MAX_POINTS``
points (longer ranges are averaged into wider buckets by the database, not in Python).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from django.db.models.functions import Floor
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from hashinsight.core.dates import parse_day_or_moment
from hashinsight.core.errors import DomainError
from miners.models import Miner, MinerModel
from sites import selectors as site_selectors
from sites.models import Site
from sites.selectors import Scope, scope_of
from telemetry.models import (
    Alert,
    Daily,
    History5m,
    LiveStatus,
    RawSample,
    SampleStatus,
    SiteDaily,
    SiteHistory5m,
)

STATES = ("hashing", "idle", "error", "offline")
STATUS_FILTERS = (*STATES, "online")
UNRESOLVED = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)


def live_offline_after() -> timedelta:
    """How long a miner may stay silent before it counts as offline."""
    return timedelta(seconds=settings.TELEMETRY_LIVE_OFFLINE_AFTER_S)


def online_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - live_offline_after()


# ---------------------------------------------------------------------------------------------------
# What the user may see.


def visible_site(*, user, site_id) -> Site:
    """The site, if the user sees it (a client: a site where one of its miners stands); else 404."""
    try:
        return site_selectors.site_list(user=user).get(pk=int(site_id))
    except (Site.DoesNotExist, TypeError, ValueError):
        raise Http404("No such site.") from None


def visible_miner(*, user, miner_id) -> Miner:
    from miners import selectors as miner_selectors

    try:
        return miner_selectors.miner_list(user=user).get(pk=int(miner_id))
    except (Miner.DoesNotExist, TypeError, ValueError):
        raise Http404("No such miner.") from None


def _scoped(qs: QuerySet, scope: Scope, *, prefix: str = "") -> QuerySet:
    q = scope.q(prefix=prefix)
    return qs if q is None else qs.filter(q)


# ---------------------------------------------------------------------------------------------------
# Live layer.


def _live_scoped(qs: QuerySet, scope: Scope) -> QuerySet:
    """Live rows restricted by the miner's *current* site and client, not the copies on the row: those
    are written at ingest (and re-synced by ``telemetry.handlers.resync_live_owner`` when a miner moves),
    so a miner handed to another client is never shown to the old one in between. Users who see
    everything need no join."""
    return _scoped(qs, scope, prefix="miner__")


def state_expression(cutoff: datetime):
    """The effective status: offline when silent for too long, else what the miner last said."""
    return Case(
        When(Q(last_seen__lt=cutoff) | Q(status=SampleStatus.OFFLINE), then=Value(SampleStatus.OFFLINE)),
        default=F("status"),
        output_field=CharField(),
    )


def live_rows(*, user, site_id: int, now: datetime | None = None) -> QuerySet[LiveStatus]:
    """The live rows of one site the user may see, each with ``state`` (see the module docstring).
    The site must be visible (404 otherwise)."""
    visible_site(user=user, site_id=site_id)
    qs = _live_scoped(LiveStatus.objects.filter(site_id=site_id), scope_of(user))
    return qs.annotate(state=state_expression(online_cutoff(now)))


def state_q(state: str, *, now: datetime | None = None) -> Q:
    """A filter on the effective status; ``online`` is every miner reporting and not offline."""
    cutoff = online_cutoff(now)
    fresh = Q(last_seen__gte=cutoff) & ~Q(status=SampleStatus.OFFLINE)
    if state == "online":
        return fresh
    if state == SampleStatus.OFFLINE:
        return ~fresh
    return Q(last_seen__gte=cutoff, status=state)


def filter_live(
    qs: QuerySet,
    *,
    status: str | None = None,
    zone: int | None = None,
    customer: int | None = None,
    temp_above: float | None = None,
    temp_below: float | None = None,
    hashrate_below_ths: float | None = None,
    now: datetime | None = None,
) -> QuerySet:
    """The live list's filters, shared by the API, the portal list and the CSV export."""
    if status:
        qs = qs.filter(state_q(status, now=now))
    if zone is not None:
        qs = qs.filter(miner__zone_id=zone)
    if customer is not None:
        qs = qs.filter(customer_id=customer)
    if temp_above is not None:
        qs = qs.filter(temp_chip_max_c__gt=temp_above)
    if temp_below is not None:
        qs = qs.filter(temp_chip_max_c__lt=temp_below)
    if hashrate_below_ths is not None:
        qs = qs.filter(hashrate_ghs__lt=hashrate_below_ths * 1000)
    return qs


# Sort keys of the live list → the column ordered on ("status" is the status the miner reported: the
# effective state depends on the clock, which no index can order by). Each has an index (site_id, column, miner_id)
# (migration 0007), so a keyset page is an index range scan whatever its depth.
LIVE_SORTS = {
    "serial": "miner__serial",
    "status": "status",
    "temperature": "temp_chip_max_c",
    "hashrate": "hashrate_ghs",
    "last_seen": "last_seen",
}
NULLABLE_SORTS = {"temperature", "hashrate"}
LIVE_FIELDS = (
    "miner_id",
    "miner__serial",
    "miner__zone_id",
    "miner__zone__name",
    "miner__model__hashrate_ths",
    "customer_id",
    "site_id",
    "state",
    "status",
    "last_seen",
    "hashrate_ghs",
    "temp_chip_max_c",
    "temp_inlet_c",
    "temp_outlet_c",
    "power_w",
    "fan_rpm",
    "errors",
)
MAX_PAGE = 500


def parse_sort(raw: str | None, *, default: str = "serial") -> tuple[str, bool]:
    raw = raw or default
    key, desc = raw.lstrip("-"), raw.startswith("-")
    if key not in LIVE_SORTS:
        raise DomainError(
            "bad_sort",
            _("Sort by one of: %(keys)s (prefix - for descending).") % {"keys": ", ".join(LIVE_SORTS)},
            details={"sort": raw[:40]},
        )
    return key, desc


def _encode_cursor(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, *, key: str, desc: bool) -> dict:
    bad = DomainError("bad_cursor", _("The cursor is not valid for this list; start again from the first page."))
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("k") != key or data.get("d") != desc:
        raise bad
    if not isinstance(data.get("i"), int) or not isinstance(data.get("n", False), bool):
        raise bad
    if not isinstance(data.get("b", False), bool):
        raise bad
    value = data.get("v")
    if key == "last_seen":
        value = parse_datetime(value) if isinstance(value, str) else None
        if value is None:
            raise bad
    elif key in ("serial", "status"):
        if not isinstance(value, str):
            raise bad
    elif not data.get("n") and not isinstance(value, int | float):
        raise bad
    data["v"] = value
    return data


@dataclass
class LivePage:
    rows: list[dict]
    next_cursor: str | None
    sort: str
    prev_cursor: str | None = None  # the page before this one (None on the first page)


def _cursor_at(row: dict, *, key: str, desc: bool, back: bool = False) -> str:
    """The cursor of a row: the page after it, or with ``back`` the page that ends just before it."""
    value = row["miner__serial"] if key == "serial" else row[LIVE_SORTS[key]]
    data = {"k": key, "d": desc, "v": _cursor_value(value)}
    data.update({"i": row["miner_id"], "n": value is None})
    if back:
        data["b"] = True
    return _encode_cursor(data)


def live_page(qs: QuerySet, *, sort: str | None = None, cursor: str | None = None, limit: int = 50) -> LivePage:
    """One keyset page of live rows: ``(sort column, miner id) > cursor`` ordered the same way, nulls
    last (a nullable column's non-null rows first, then its nulls by miner id). Stable and complete
    under concurrent updates of other rows, and as fast on the last page as on the first.

    A cursor with ``"b": true`` (``prev_cursor``) asks for the page that ends just before its row: the
    same ranges read in the fully reversed order (PostgreSQL scans the same indexes backwards), then
    put back in display order. Reaching the start that way gives the first page."""
    key, desc = parse_sort(sort)
    limit = max(1, min(int(limit), MAX_PAGE))
    column = LIVE_SORTS[key]
    cur = _decode_cursor(cursor, key=key, desc=desc) if cursor else None
    back = bool(cur and cur.get("b"))
    scan_desc = desc != back  # the order the rows are read in
    direction = (lambda name: F(name).desc()) if scan_desc else (lambda name: F(name).asc())
    after = TupleLessThan if scan_desc else TupleGreaterThan
    nullable = key in NULLABLE_SORTS
    in_nulls = bool(cur and cur.get("n"))

    def values_part(from_cursor: bool) -> QuerySet:
        part = qs.filter(**{f"{column}__isnull": False}) if nullable else qs
        if from_cursor and key == "serial":
            # Serials are unique: the serial alone is the key, and a plain range on the miners' serial
            # index (a row comparison spanning two tables would scan that index from its start).
            part = part.filter(**{"miner__serial__lt" if scan_desc else "miner__serial__gt": cur["v"]})
        elif from_cursor:
            part = part.filter(after((F(column), F("miner_id")), (cur["v"], cur["i"])))
        return part.order_by(direction(column), direction("miner_id"))

    def nulls_part(from_cursor: bool) -> QuerySet:
        part = qs.filter(**{f"{column}__isnull": True})
        if from_cursor:
            part = part.filter(**{"miner_id__lt" if scan_desc else "miner_id__gt": cur["i"]})
        return part.order_by(direction("miner_id"))

    if not back:  # the rows' values, then (nullable columns) the nulls
        parts = [] if in_nulls else [values_part(cur is not None)]
        parts += [nulls_part(in_nulls)] if nullable else []
    else:  # read backwards: the nulls before the cursor's row, then the values
        parts = [nulls_part(True), values_part(False)] if in_nulls else [values_part(True)]
    rows: list[dict] = []
    for part in parts:
        if len(rows) > limit:
            break
        rows += list(part.values(*LIVE_FIELDS)[: limit + 1 - len(rows)])
    more = len(rows) > limit
    rows = rows[:limit]
    sort_name = ("-" if desc else "") + key
    if back:
        if not more:  # nothing before these rows: the first page (full, with its own next cursor)
            return live_page(qs, sort=sort_name, cursor=None, limit=limit)
        rows.reverse()
    next_cursor = _cursor_at(rows[-1], key=key, desc=desc) if rows and (more or back) else None
    prev_cursor = None
    if cur is not None:
        if rows:
            prev_cursor = _cursor_at(rows[0], key=key, desc=desc, back=True)
        else:  # past the end (the rows moved on): the page before the cursor's own row
            prev_cursor = _encode_cursor({**cur, "v": _cursor_value(cur["v"]), "b": True})
    return LivePage(rows=[_live_row(r) for r in rows], next_cursor=next_cursor, sort=sort_name, prev_cursor=prev_cursor)


def _cursor_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _live_row(r: dict) -> dict:
    nominal = float(r["miner__model__hashrate_ths"]) if r["miner__model__hashrate_ths"] is not None else None
    ths = r["hashrate_ghs"] / 1000 if r["hashrate_ghs"] is not None else None
    fans = [f for f in (r["fan_rpm"] or []) if isinstance(f, int | float)]
    return {
        "miner": r["miner_id"],
        "serial": r["miner__serial"],
        "zone": r["miner__zone_id"],
        "zone_name": r["miner__zone__name"],
        "customer": r["customer_id"],
        "site": r["site_id"],
        "state": r["state"],
        "reported_status": r["status"],
        "online": r["state"] != SampleStatus.OFFLINE,
        "last_seen": r["last_seen"],
        "hashrate_ths": ths,
        "nominal_hashrate_ths": nominal,
        "hashrate_pct_of_nominal": round(100 * ths / nominal, 1) if ths is not None and nominal else None,
        "temp_chip_max_c": r["temp_chip_max_c"],
        "temp_inlet_c": r["temp_inlet_c"],
        "temp_outlet_c": r["temp_outlet_c"],
        "power_w": r["power_w"],
        "fan_rpm": fans,
        "errors": r["errors"] or [],
    }


def live_ordered(qs: QuerySet, *, sort: str | None = None) -> QuerySet:
    """The live rows in keyset order (for the CSV export: every row, the same order as the pages)."""
    key, desc = parse_sort(sort)
    column = LIVE_SORTS[key]
    order = (
        [F(column).desc(nulls_last=True), F("miner_id").desc()]
        if desc
        else [F(column).asc(nulls_last=True), F("miner_id").asc()]
    )
    return qs.order_by(*order)


# ---------------------------------------------------------------------------------------------------
# Site dashboard summary.

TEMP_BUCKET_C = 5
TEMP_LOW_C, TEMP_HIGH_C = 40, 100  # buckets: below 40, 40–45, …, 95–100, 100 and above
WORST_N = 10


def temp_buckets() -> list[tuple[str, float | None, float | None]]:
    edges = list(range(TEMP_LOW_C, TEMP_HIGH_C + 1, TEMP_BUCKET_C))
    out = [(f"<{edges[0]}", None, float(edges[0]))]
    out += [(f"{lo}–{hi}", float(lo), float(hi)) for lo, hi in itertools.pairwise(edges)]
    out.append((f"≥{edges[-1]}", float(edges[-1]), None))
    return out


SUMMARY_FRESH_S = 10  # the dashboard polls every 15 s; a summary is rebuilt at most this often per scope
SUMMARY_MAX_STALE_S = 20  # an older summary (a dashboard opened after a quiet spell) is rebuilt, not shown


def summary_scope_key(scope: Scope) -> str:
    """The part of the cache key that says whose view of the site it is: the whole site (owners,
    admins and the site owners it is granted to see the same), or one set of hosting clients."""
    if scope.kind in ("all", "sites"):
        return "site"
    if scope.kind == "customers":
        return "c" + "-".join(str(i) for i in sorted(scope.ids))
    return "none"


def _scope_from_key(key: str) -> Scope:
    if key == "site":
        return Scope("all")
    if key.startswith("c") and key != "c":
        return Scope("customers", tuple(int(i) for i in key[1:].split("-")))
    return Scope("none")


def site_summary(*, user, site_id: int, cached: bool = True):
    """The site dashboard's figures for what the user sees (a client: its own miners only), through
    the cache (fresh for ``SUMMARY_FRESH_S``, then served stale while one rebuild runs). Returns
    ``hashinsight.core.cache.Cached`` (``value``, ``state``)."""
    from hashinsight.core import cache as cache_helper

    site = visible_site(user=user, site_id=site_id)
    key = summary_scope_key(scope_of(user))
    if not cached:
        return cache_helper.Cached(build_site_summary(site=site.pk, scope=key), "bypass")
    return cache_helper.get(
        "telemetry_summary", fresh_s=SUMMARY_FRESH_S, max_stale_s=SUMMARY_MAX_STALE_S, site=site.pk, scope=key
    )


def build_site_summary(*, site: int, scope: str, now: datetime | None = None) -> dict:
    """Build the summary (see ``site_summary``): one grouped pass over the live rows (status × fresh ×
    temperature band), the miners' nominal figures grouped by model, two top-N reads and the alerts."""
    now = now or timezone.now()
    site_obj = Site.objects.only("id", "name", "slug").get(pk=site)
    scope_obj = _scope_from_key(scope)
    cutoff = online_cutoff(now)
    live = _live_scoped(LiveStatus.objects.filter(site_id=site), scope_obj)
    fresh = Q(last_seen__gte=cutoff) & ~Q(status=SampleStatus.OFFLINE)

    band = Floor(F("temp_chip_max_c") / Value(float(TEMP_BUCKET_C)), output_field=IntegerField())
    groups = (
        live.annotate(fresh=Case(When(fresh, then=Value(1)), default=Value(0), output_field=IntegerField()), band=band)
        .values("status", "fresh", "band")
        .annotate(n=Count("miner_id"), ghs=Sum("hashrate_ghs"), w=Sum("power_w"), tsum=Sum("temp_chip_max_c"),
                  tn=Count("temp_chip_max_c"), tmax=Max("temp_chip_max_c"))
        .order_by()
    )  # fmt: skip
    buckets = temp_buckets()
    histogram = [0] * len(buckets)
    reporting = online = 0
    ghs = watts = tsum = 0.0
    tn = 0
    tmax = None
    by_state = {"hashing": 0, "idle": 0, "error": 0}
    for g in groups:
        reporting += g["n"]
        if not g["fresh"]:
            continue
        online += g["n"]
        by_state[g["status"]] = by_state.get(g["status"], 0) + g["n"]
        ghs += g["ghs"] or 0
        watts += g["w"] or 0
        tsum += g["tsum"] or 0
        tn += g["tn"]
        if g["tmax"] is not None:
            tmax = g["tmax"] if tmax is None else max(tmax, g["tmax"])
        if g["band"] is not None:
            low = g["band"] * TEMP_BUCKET_C
            index = 0 if low < TEMP_LOW_C else min(len(buckets) - 1, 1 + (low - TEMP_LOW_C) // TEMP_BUCKET_C)
            histogram[index] += g["tn"]

    miners = _scoped(Miner.objects.filter(site_id=site).exclude(status=Miner.Status.RETIRED), scope_obj)
    per_model = dict(miners.values_list("model_id").annotate(n=Count("id")).order_by())
    nominal = {m.pk: m for m in MinerModel.objects.filter(pk__in=per_model).only("hashrate_ths", "power_w")}
    fleet_count = sum(per_model.values())
    nominal_ths = sum(float(nominal[m].hashrate_ths) * n for m, n in per_model.items())
    nominal_w = sum(float(nominal[m].power_w) * n for m, n in per_model.items())

    fields = ("miner_id", "miner__serial", "temp_chip_max_c", "hashrate_ghs", "miner__model__hashrate_ths")
    worst_temp = list(
        live.filter(fresh, temp_chip_max_c__isnull=False)
        .order_by(F("temp_chip_max_c").desc(), "miner_id")
        .values(*fields)[:WORST_N]
    )
    hashing = live.filter(fresh, status=SampleStatus.HASHING, hashrate_ghs__isnull=False)
    # One top-N over the fleet by the ratio: the N lowest per model read through the hashrate index cost
    # 2.5× more at 100,000 miners (a model whose miners all hash high walks most of the index first).
    ratio = ExpressionWrapper(
        F("hashrate_ghs") / (F("miner__model__hashrate_ths") * Value(1000.0)), output_field=FloatField()
    )
    worst_ratio = list(hashing.annotate(ratio=ratio).order_by("ratio", "miner_id").values(*fields)[:WORST_N])
    alerts = _scoped(Alert.objects.filter(site_id=site, status__in=UNRESOLVED), scope_obj)
    by_severity = dict(alerts.values_list("severity").annotate(n=Count("id")).order_by())
    recent_alerts = list(
        alerts.order_by("-last_seen").values(
            "id",
            "severity",
            "status",
            "alert_type",
            "message",
            "miner_id",
            "miner__serial",
            "last_seen",
            "count",
            "evidence__msg",
        )[:WORST_N]
    )

    total = max(fleet_count, reporting)
    hashrate_ths = ghs / 1000
    by_state["offline"] = total - sum(by_state.values())

    def worst(row):
        nominal_row = float(row["miner__model__hashrate_ths"] or 0)
        ths = row["hashrate_ghs"] / 1000 if row["hashrate_ghs"] is not None else None
        return {
            "miner": row["miner_id"],
            "serial": row["miner__serial"],
            "temp_chip_max_c": row["temp_chip_max_c"],
            "hashrate_ths": ths,
            "nominal_hashrate_ths": nominal_row or None,
            "hashrate_pct_of_nominal": round(100 * ths / nominal_row, 1) if ths is not None and nominal_row else None,
        }

    return {
        "site": {"id": site_obj.pk, "name": site_obj.name, "slug": site_obj.slug},
        "scope": "site" if scope == "site" else "customers",
        "generated_at": now,
        "offline_after_s": int(live_offline_after().total_seconds()),
        "miners": total,
        "miners_reporting": reporting,
        "miners_online": online,
        "online_pct": round(100 * online / total, 1) if total else None,
        "by_state": by_state,
        "hashrate_ths": round(hashrate_ths, 3),
        "nominal_hashrate_ths": round(nominal_ths, 3),
        "hashrate_pct_of_nominal": round(100 * hashrate_ths / nominal_ths, 1) if nominal_ths else None,
        "power_kw": round(watts / 1000, 3),
        "nominal_power_kw": round(nominal_w / 1000, 3),
        "temp_chip_avg_c": round(tsum / tn, 1) if tn else None,
        "temp_chip_max_c": tmax,
        "temperature_histogram": [
            {"label": label, "from_c": lo, "to_c": hi, "miners": histogram[n]}
            for n, (label, lo, hi) in enumerate(buckets)
        ],
        "worst_by_temperature": [worst(r) for r in worst_temp],
        "worst_by_hashrate": [worst(r) for r in worst_ratio],
        "open_alerts": {s: by_severity.get(s, 0) for s in Alert.Severity.values},
        "recent_alerts": [
            {
                "id": a["id"],
                "severity": a["severity"],
                "status": a["status"],
                "alert_type": a["alert_type"],
                "message": a["message"],
                "msg": a["evidence__msg"] if isinstance(a["evidence__msg"], dict) else None,
                "miner": a["miner_id"],
                "serial": a["miner__serial"],
                "last_seen": a["last_seen"],
                "count": a["count"],
            }
            for a in recent_alerts
        ],
    }


def _register_summary_builder():
    from hashinsight.core.cache import register_builder

    register_builder("telemetry_summary")(build_site_summary)


_register_summary_builder()


# ---------------------------------------------------------------------------------------------------
# History.


def _kept() -> tuple[timedelta, timedelta]:
    """How long raw samples and 5-minute windows are kept (the retention settings), which is what each
    layer can answer for."""
    return (
        timedelta(hours=settings.TELEMETRY_RAW_RETENTION_HOURS),
        timedelta(days=settings.TELEMETRY_HISTORY_RETENTION_DAYS),
    )


MAX_RANGE = timedelta(days=3660)
MAX_POINTS = 2500
DEFAULT_SPAN = timedelta(hours=24)
RESOLUTIONS = ("auto", "raw", "5m", "daily")
LAYER_STEP_S = {"raw": 60, "5m": 300, "daily": 86400}


class EpochSeconds(Func):
    """Seconds since 1970 of a date or datetime column (bucketing in SQL on both databases)."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        return self.as_sqlite(compiler, connection, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS REAL)")

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8")


def _parse_when(raw: str, name: str, *, end: bool) -> datetime:
    value, day = parse_day_or_moment(raw)
    if value is None:
        raise DomainError(
            "bad_date",
            _("%(name)s must be an ISO-8601 date or date and time, e.g. 2026-11-25 or 2026-11-25T08:00:00Z.")
            % {"name": name},
            details={name: raw[:40]},
        )
    # A date means its whole UTC day: `to` its end (exclusive).
    return value + timedelta(days=1) if day is not None and end else value


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime
    layer: str
    bucket_s: int  # 0: the layer's own rows, unbucketed

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def history_range(
    *, start: str | None, end: str | None, resolution: str | None, site_level: bool = False, now=None
) -> Range:
    """Parse and check a history request and choose its layer (see the module docstring)."""
    now = now or timezone.now()
    resolution = resolution or "auto"
    if resolution not in RESOLUTIONS or (site_level and resolution == "raw"):
        allowed = [r for r in RESOLUTIONS if not (site_level and r == "raw")]
        raise DomainError(
            "bad_resolution",
            _("Resolution must be one of: %(allowed)s.") % {"allowed": ", ".join(allowed)},
            details={"resolution": str(resolution)[:20]},
        )
    end_at = _parse_when(end, "to", end=True) if end else now
    start_at = _parse_when(start, "from", end=False) if start else end_at - DEFAULT_SPAN
    if start_at >= end_at:
        raise DomainError("bad_range", _("from must be before to."))
    span = end_at - start_at
    if span > MAX_RANGE:
        raise DomainError("range_too_large", _("At most %(days)s days at once.") % {"days": MAX_RANGE.days})
    raw_kept, h5m_kept = _kept()
    if resolution == "auto":
        if not site_level and span <= raw_kept and start_at >= now - raw_kept - timedelta(minutes=5):
            layer = "raw"
        elif span <= h5m_kept and start_at >= now - h5m_kept - timedelta(days=1):
            layer = "5m"
        else:
            layer = "daily"
    else:
        layer = resolution
    limits = {"raw": raw_kept, "5m": h5m_kept}
    if layer in limits and span > limits[layer]:
        raise DomainError(
            "range_too_large",
            _("Resolution %(resolution)s covers at most %(hours)s hours; ask for a coarser resolution.")
            % {"resolution": layer, "hours": int(limits[layer].total_seconds() // 3600)},
        )
    bucket_s = 0
    if span.total_seconds() / LAYER_STEP_S[layer] > MAX_POINTS:
        bucket_s = bucket_for(span)
    return Range(start_at, end_at, layer, bucket_s)


# Bucket widths a long range is averaged into: each a multiple of the layers' own steps below it.
NICE_BUCKETS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400)


def bucket_for(span: timedelta) -> int:
    """The narrowest nice bucket that keeps ``span`` within ``MAX_POINTS`` points."""
    needed = span.total_seconds() / MAX_POINTS
    return next((b for b in NICE_BUCKETS_S if b >= needed), NICE_BUCKETS_S[-1])


def _from_epoch(seconds) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _r(value, places=3):
    return None if value is None else round(float(value), places)


def miner_history(*, user, miner_id, rng: Range) -> dict:
    """A miner's samples over the range from the layer ``rng`` chose (404 if the miner is hidden)."""
    miner = visible_miner(user=user, miner_id=miner_id)
    scope = scope_of(user)
    # Every layer keeps the site and the client of each row as it was then: rows written while the miner
    # stood at a site the user does not see, or belonged to another client, stay hidden.
    start, end = rng.start, rng.end
    bucket_s = rng.bucket_s
    if rng.layer == "raw":
        qs = _scoped(RawSample.objects.filter(miner_id=miner.pk, ts__gte=start, ts__lt=end), scope)
        if not bucket_s and qs.count() > MAX_POINTS:
            bucket_s = bucket_for(rng.span)
        if bucket_s:
            aggs = {
                "hashrate_ths": Avg("hashrate_ths"),
                "temp_chip_max_c": Avg("temp_chip_max_c"),
                "temp_chip_peak_c": Max("temp_chip_max_c"),
                "temp_inlet_c": Avg("temp_inlet_c"),
                "temp_outlet_c": Avg("temp_outlet_c"),
                "power_w": Avg("power_w"),
            }
            rows = _grouped(qs, "ts", bucket_s, aggs)
        else:
            fields = (
                "hashrate_ths",
                "temp_chip_max_c",
                "temp_inlet_c",
                "temp_outlet_c",
                "power_w",
                "fan_rpm",
                "status",
            )
            rows = []
            for r in qs.order_by("ts").values("ts", *fields):
                fans = [f for f in (r["fan_rpm"] or []) if isinstance(f, int | float)]
                rows.append({
                    **r, "t": r["ts"], "temp_chip_peak_c": r["temp_chip_max_c"],
                    "fan_rpm": sum(fans) / len(fans) if fans else None,
                    "uptime_fraction": 1.0 if r["status"] == SampleStatus.HASHING else 0.0,
                })  # fmt: skip
    elif rng.layer == "5m":
        qs = _scoped(History5m.objects.filter(miner_id=miner.pk, bucket__gte=start, bucket__lt=end), scope)
        fields = {
            "hashrate_ths": "avg_hashrate_ths",
            "temp_chip_max_c": "avg_temp_chip_max_c",
            "temp_chip_peak_c": "max_temp_chip_max_c",
            "temp_inlet_c": "avg_temp_inlet_c",
            "temp_outlet_c": "avg_temp_outlet_c",
            "power_w": "avg_power_w",
            "fan_rpm": "avg_fan_rpm",
            "uptime_fraction": "uptime_fraction",
        }
        if bucket_s:
            aggs = {k: (Max(v) if k == "temp_chip_peak_c" else Avg(v)) for k, v in fields.items()}
            rows = _grouped(qs, "bucket", bucket_s, aggs)
        else:
            rows = _plain(qs, "bucket", fields)
    else:
        qs = _scoped(Daily.objects.filter(miner_id=miner.pk, day__gte=start.date(), day__lt=_ceil_day(end)), scope)
        aggs = {
            "hashrate_ths": Avg("avg_hashrate_ths"),
            "temp_chip_peak_c": Max("max_temp_chip_c"),
            "energy_kwh": Sum("energy_kwh"),
            "uptime_pct": Avg("uptime_pct"),
            "distinct_days": Count("day"),
        }
        rows = [_daily_figures(r) for r in _grouped(qs, "day", bucket_s, aggs)]
        for r in rows:
            r["temp_chip_max_c"] = r["temp_chip_peak_c"]
    return {
        "miner": miner.pk,
        "serial": miner.serial,
        "site": miner.site_id,
        "nominal_hashrate_ths": float(miner.model.hashrate_ths),
        "nominal_power_w": float(miner.model.power_w),
        **_range_info(rng, bucket_s),
        "points": [_point(r, MINER_POINT) for r in rows],
    }


MINER_POINT = (
    "hashrate_ths", "temp_chip_max_c", "temp_chip_peak_c", "temp_inlet_c", "temp_outlet_c", "power_w", "fan_rpm",
    "uptime_fraction", "energy_kwh",
)  # fmt: skip
SITE_POINT = (
    "hashrate_ths", "power_w", "temp_chip_max_c", "temp_chip_peak_c", "uptime_fraction", "energy_kwh",
    "miners_reporting", "miners_hashing",
)  # fmt: skip


def _point(row: dict, keys) -> dict:
    return {"t": row["t"], **{k: _r(row.get(k)) for k in keys}}


def _daily_figures(r: dict, *, per_day_sum: str | None = None) -> dict:
    """Daily rows (one day, or several averaged into a bucket) → chart figures: average power from the
    energy, uptime as a fraction; ``per_day_sum`` names a per-day sum over miners to average over days."""
    days = r.get("days") or 1
    out = dict(r)
    if per_day_sum:
        out["hashrate_ths"] = (r[per_day_sum] or 0) / days
        out["miners_reporting"] = r.get("reports", 0) / days
    energy = r.get("energy_kwh")
    # Energy summed over the bucket's miner-days; power over the bucket's days.
    n_days = r.get("distinct_days") or 1
    out["power_w"] = energy * 1000 / (24 * n_days) if energy is not None else None
    out["uptime_fraction"] = r["uptime_pct"] / 100 if r.get("uptime_pct") is not None else None
    return out


def _ceil_day(moment: datetime) -> date:
    day = moment.date()
    return day if moment == _day_start(day) else day + timedelta(days=1)


def _range_info(rng: Range, bucket_s: int) -> dict:
    return {
        "from": rng.start,
        "to": rng.end,
        "layer": rng.layer,
        "step_s": bucket_s or LAYER_STEP_S[rng.layer],
        "downsampled": bool(bucket_s),
    }


def _grouped(qs: QuerySet, column: str, bucket_s: int, aggregates: dict) -> list[dict]:
    """``aggregates`` per ``bucket_s``-second bucket of ``column``, computed by the database (per
    distinct value of ``column`` when ``bucket_s`` is 0). Each row has ``t``, the bucket's start."""
    named = {f"a_{k}": v for k, v in aggregates.items()}
    if bucket_s:
        b = Floor(EpochSeconds(F(column)) / Value(float(bucket_s)), output_field=IntegerField())
        rows = qs.annotate(b=b).values("b").annotate(**named).order_by("b")
    else:
        rows = qs.values(column).annotate(**named).order_by(column)
    out = []
    for r in rows:
        t = _from_epoch(r["b"] * bucket_s) if bucket_s else r[column]
        if not isinstance(t, datetime):
            t = _day_start(t)
        out.append({"t": t, **{k[2:]: v for k, v in r.items() if k.startswith("a_")}})
    return out


def _plain(qs: QuerySet, column: str, fields: dict) -> list[dict]:
    """The layer's own rows, ``fields`` renamed (output name → column)."""
    rows = qs.order_by(column).values(column, *fields.values())
    return [{"t": r[column], **{k: r[v] for k, v in fields.items()}} for r in rows]


def site_history(*, user, site_id, rng: Range) -> dict:
    """A site's fleet over time: the site rollups for whoever sees the whole site; for a hosting client
    the aggregate of its own miners (5-minute and daily layers), never the whole site's."""
    site = visible_site(user=user, site_id=site_id)
    scope = scope_of(user)
    start, end, bucket_s = rng.start, rng.end, rng.bucket_s
    whole_site = scope.kind in ("all", "sites")
    if rng.layer == "5m" and whole_site:
        qs = SiteHistory5m.objects.filter(site_id=site.pk, bucket__gte=start, bucket__lt=end)
        fields = {
            "hashrate_ths": "hashrate_ths",
            "power_w": "power_w",
            "temp_chip_max_c": "avg_temp_chip_max_c",
            "temp_chip_peak_c": "max_temp_chip_max_c",
            "uptime_fraction": "uptime_fraction",
            "miners_reporting": "miners_reporting",
            "miners_hashing": "miners_hashing",
        }
        if bucket_s:
            aggs = {k: (Max(v) if k == "temp_chip_peak_c" else Avg(v)) for k, v in fields.items()}
            rows = _grouped(qs, "bucket", bucket_s, aggs)
        else:
            rows = _plain(qs, "bucket", fields)
    elif rng.layer == "5m":
        qs = _scoped(History5m.objects.filter(site_id=site.pk, bucket__gte=start, bucket__lt=end), scope)
        # Per window: sums over the client's miners; a bucket of several windows: their average.
        aggs = {
            "hashrate_sum": Sum("avg_hashrate_ths"),
            "power_sum": Sum("avg_power_w"),
            "temp_chip_max_c": Avg("avg_temp_chip_max_c"),
            "temp_chip_peak_c": Max("max_temp_chip_max_c"),
            "uptime_fraction": Avg("uptime_fraction"),
            "reports": Count("miner_id"),
            "hashing": Count("miner_id", filter=Q(hashing_count__gt=0)),
            "windows": Count("bucket", distinct=True),
        }
        rows = []
        for r in _grouped(qs, "bucket", bucket_s, aggs):
            w = r["windows"] or 1
            rows.append({
                **r, "hashrate_ths": (r["hashrate_sum"] or 0) / w, "power_w": (r["power_sum"] or 0) / w,
                "miners_reporting": r["reports"] / w, "miners_hashing": r["hashing"] / w,
            })  # fmt: skip
    else:
        if whole_site:
            qs = SiteDaily.objects.filter(site_id=site.pk, day__gte=start.date(), day__lt=_ceil_day(end))
            aggs = {"hashrate_sum": Sum("avg_hashrate_ths"), "reports": Sum("miners_reporting")}
        else:
            qs = _scoped(Daily.objects.filter(site_id=site.pk, day__gte=start.date(), day__lt=_ceil_day(end)), scope)
            aggs = {"hashrate_sum": Sum("avg_hashrate_ths"), "reports": Count("miner_id")}
        aggs.update(
            energy_kwh=Sum("energy_kwh"),
            uptime_pct=Avg("uptime_pct"),
            temp_chip_peak_c=Max("max_temp_chip_c"),
            days=Count("day", distinct=True),
            distinct_days=Count("day", distinct=True),
        )
        rows = [_daily_figures(r, per_day_sum="hashrate_sum") for r in _grouped(qs, "day", bucket_s, aggs)]
    return {
        "site": site.pk,
        "scope": "site" if whole_site else "customers",
        **_range_info(rng, bucket_s),
        "points": [_point(r, SITE_POINT) for r in rows],
    }


# ---------------------------------------------------------------------------------------------------
# Daily reports.

DAILY_MAX_DAYS = 400


def daily_rows(
    *,
    user,
    site: int | None = None,
    customer: int | None = None,
    miner: int | None = None,
    start: str | None = None,
    end: str | None = None,
) -> QuerySet[Daily]:
    """Daily rows the user may see (a client: rows rolled up while the miner was its own), newest first."""
    today = timezone.now().date()
    day_to = _parse_when(end, "to", end=True).date() if end else today + timedelta(days=1)  # exclusive
    day_from = _parse_when(start, "from", end=False).date() if start else day_to - timedelta(days=31)
    if day_from >= day_to:
        raise DomainError("bad_range", _("from must be before to."))
    if (day_to - day_from).days > DAILY_MAX_DAYS:
        raise DomainError("range_too_large", _("At most %(days)s days at once.") % {"days": DAILY_MAX_DAYS})
    qs = _scoped(Daily.objects.filter(day__gte=day_from, day__lt=day_to), scope_of(user))
    if site is not None:
        qs = qs.filter(site_id=site)
    if customer is not None:
        qs = qs.filter(customer_id=customer)
    if miner is not None:
        qs = qs.filter(miner_id=miner)
    return qs.order_by("-day", "miner_id")


DAILY_FIELDS = (
    "miner_id",
    "miner__serial",
    "day",
    "site_id",
    "customer_id",
    "sample_count",
    "buckets_reported",
    "avg_hashrate_ths",
    "energy_kwh",
    "uptime_pct",
    "max_temp_chip_c",
    "restarts",
    "accepted_shares",
    "rejected_shares",
)


def miner_open_alerts(*, user, miner: Miner) -> QuerySet[Alert]:
    return _scoped(Alert.objects.filter(miner_id=miner.pk, status__in=UNRESOLVED), scope_of(user)).order_by(
        "-last_seen"
    )


def miner_live(*, user, miner: Miner, now: datetime | None = None) -> LiveStatus | None:
    """The miner's live row with ``state`` (None if it never reported), in the user's scope."""
    qs = _live_scoped(LiveStatus.objects.filter(miner_id=miner.pk), scope_of(user))
    return qs.annotate(state=state_expression(online_cutoff(now))).first()
