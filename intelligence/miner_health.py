"""Miner health predictions: the features of every miner in a scope in **one query**, scored by
``intelligence.algorithms.miner_health`` (vectorised), upserted into ``MinerHealth`` in batches, and a summary per
user in the cache (``miner_health:{id}``).

A miner's score does not depend on who looks at it, so the hourly Beat run scores every miner once
(``health_predict_all``) instead of once per user: per user, the fleets of owners, admins, site operators and
clients overlap, and 100,000 miners would be scored several times an hour. ``health_predict(user_id)`` (the API's
POST, or a user's first visit) scores just the miners that user sees, with the same code.

The features (see the algorithm's table): from the daily layer, the last 3 days against the 11 before (chip
temperature, hashrate), restarts and shares over 7 days; from the 5-minute layer, the last two hours against the
same two hours yesterday (the slowest fan, the hottest chip now). The same hours yesterday, so the night's cooler
air does not read as a failing fan. Error codes are not in the rollups (only in raw samples, kept for days), so
restarts stand for them."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from hashinsight.core import cache as cache_helper
from hashinsight.core.cache import register_builder
from intelligence.algorithms import miner_health as mh
from intelligence.models import MinerHealth

log = logging.getLogger(__name__)
BATCH = 5000
DAILY_DAYS = 14
RECENT_DAYS = 3
FAN_WINDOW = timedelta(hours=2)
TOP = 10


def _scope_sql(scope, alias: str) -> tuple[str, list]:
    """The scope as SQL on a table carrying ``site_id``/``customer_id`` (the rule is ``sites.selectors.Scope``'s;
    this only writes it for raw SQL)."""
    if scope.kind == "all":
        return "", []
    if scope.kind in ("sites", "customers") and scope.ids:
        column = "site_id" if scope.kind == "sites" else "customer_id"
        return f" AND {alias}.{column} IN ({', '.join(['%s'] * len(scope.ids))})", list(scope.ids)
    return " AND 1 = 0", []


COLUMNS = (
    "miner_id", "site_id", "customer_id", "nominal_ths", "cooling", "temp_recent_c", "temp_prior_c",
    "hashrate_recent_ths", "hashrate_prior_ths", "restarts_7d", "accepted_7d", "rejected_7d", "days",
    "fan_recent_rpm", "fan_prior_rpm", "temp_now_c",
)  # fmt: skip


FEATURES_SQL = """
    WITH dd AS (
      SELECT d.miner_id,
        AVG(CASE WHEN d.day >= %s THEN d.max_temp_chip_c END) AS temp_recent,
        AVG(CASE WHEN d.day < %s THEN d.max_temp_chip_c END) AS temp_prior,
        AVG(CASE WHEN d.day >= %s THEN d.avg_hashrate_ths END) AS hr_recent,
        AVG(CASE WHEN d.day < %s THEN d.avg_hashrate_ths END) AS hr_prior,
        SUM(CASE WHEN d.day >= %s THEN d.restarts ELSE 0 END) AS restarts_7d,
        SUM(CASE WHEN d.day >= %s THEN d.accepted_shares ELSE 0 END) AS accepted_7d,
        SUM(CASE WHEN d.day >= %s THEN d.rejected_shares ELSE 0 END) AS rejected_7d,
        COUNT(*) AS days
      FROM telemetry_daily d
      WHERE d.day >= %s AND d.day < %s{d}
      GROUP BY d.miner_id
    ), hh AS (
      SELECT h.miner_id,
        AVG(CASE WHEN h.bucket >= %s THEN h.min_fan_rpm END) AS fan_recent,
        AVG(CASE WHEN h.bucket < %s THEN h.min_fan_rpm END) AS fan_prior,
        MAX(CASE WHEN h.bucket >= %s THEN h.max_temp_chip_max_c END) AS temp_now
      FROM telemetry_history_5m h
      WHERE ((h.bucket >= %s AND h.bucket < %s) OR (h.bucket >= %s AND h.bucket < %s)){h}
      GROUP BY h.miner_id
    )
    SELECT m.id, m.site_id, m.customer_id, mm.hashrate_ths, mm.cooling, dd.temp_recent, dd.temp_prior,
           dd.hr_recent, dd.hr_prior, dd.restarts_7d, dd.accepted_7d, dd.rejected_7d, dd.days,
           hh.fan_recent, hh.fan_prior, hh.temp_now
    FROM miners_miner m
    JOIN miners_minermodel mm ON mm.id = m.model_id
    LEFT JOIN dd ON dd.miner_id = m.id
    LEFT JOIN hh ON hh.miner_id = m.id
    WHERE m.status <> 'retired'{m}
    ORDER BY m.id
    """


def feature_rows(scope, *, now: datetime | None = None) -> list[tuple]:
    """Every miner of the scope (not retired) with its features; one query, whatever the number of miners."""
    now = now or timezone.now()
    today = now.date()
    start, recent, week = today - timedelta(days=DAILY_DAYS), today - timedelta(days=RECENT_DAYS), today - timedelta(7)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    h_recent, h_prior = end - FAN_WINDOW, end - timedelta(days=1) - FAN_WINDOW
    h_prior_end = end - timedelta(days=1)
    d_sql, d_params = _scope_sql(scope, "d")
    h_sql, h_params = _scope_sql(scope, "h")
    m_sql, m_params = _scope_sql(scope, "m")
    # Only the fixed fragments of _scope_sql are formatted in; every value is a parameter.
    sql = FEATURES_SQL.format(d=d_sql, h=h_sql, m=m_sql)
    params = [recent, recent, recent, recent, week, week, week, start, today, *d_params,
              h_recent, h_prior_end, h_recent, h_recent, end, h_prior, h_prior_end, *h_params, *m_params]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _arrays(rows: list[tuple]) -> dict[str, np.ndarray]:
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    raw = dict(zip(COLUMNS, cols, strict=True))

    def num(name):
        return np.array([np.nan if v is None else float(v) for v in raw[name]], dtype=float)

    out = {name: num(name) for name in COLUMNS if name not in ("cooling",)}
    out["temp_limit_c"] = np.array([mh.TEMP_LIMIT_C.get(c, mh.TEMP_LIMIT_C["air"]) for c in raw["cooling"]])
    out["days"] = np.nan_to_num(out["days"], nan=0.0)
    return out


def _round(v: float, digits: int = 2):
    return None if not np.isfinite(v) else round(float(v), digits)


@dataclass(frozen=True)
class HealthRun:
    miners: int
    scored: int
    unscored: int
    tiers: dict[str, int]
    seconds: dict[str, float]

    def as_dict(self) -> dict:
        return {"miners": self.miners, "scored": self.scored, "unscored": self.unscored, "tiers": self.tiers,
                "seconds": self.seconds}  # fmt: skip


UPSERT_SQL = """
    INSERT INTO intelligence_minerhealth (miner_id, score, tier, reasons, features, computed_at)
    SELECT miner_id, score, tier, reasons, features, computed_at FROM miner_health_in
    ON CONFLICT (miner_id) DO UPDATE SET score = EXCLUDED.score, tier = EXCLUDED.tier, reasons = EXCLUDED.reasons,
        features = EXCLUDED.features, computed_at = EXCLUDED.computed_at
"""


def _store(objs: list[MinerHealth]) -> None:
    """Upsert the rows. On PostgreSQL: COPY into a temporary table and one INSERT … ON CONFLICT (a multi-row
    INSERT with six parameters a row spent ~1 ms per miner binding and planning); elsewhere ``bulk_create``."""
    if connection.vendor != "postgresql":
        for k in range(0, len(objs), BATCH):
            MinerHealth.objects.bulk_create(
                objs[k : k + BATCH], update_conflicts=True, unique_fields=["miner"],
                update_fields=["score", "tier", "reasons", "features", "computed_at"],
            )  # fmt: skip
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE miner_health_in (miner_id integer, score double precision, tier varchar(8), "
            "reasons jsonb, features jsonb, computed_at timestamptz) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY miner_health_in FROM STDIN") as copy:
            for o in objs:
                copy.write_row((o.miner_id, o.score, o.tier, json.dumps(o.reasons), json.dumps(o.features),
                                o.computed_at))  # fmt: skip
        cursor.execute(UPSERT_SQL)
        # ON COMMIT DROP alone leaves it behind when the caller's transaction goes on (a second run in it)
        cursor.execute("DROP TABLE miner_health_in")


def health_compute(scope, *, now: datetime | None = None) -> HealthRun:
    """Score every miner of ``scope`` and upsert its ``MinerHealth``. Idempotent: the same history gives the
    same rows. A miner with no history at all (neither layer) is not scored and its old row, if any, stays."""
    now = now or timezone.now()
    t0 = time.perf_counter()
    rows = feature_rows(scope, now=now)
    t1 = time.perf_counter()
    f = _arrays(rows)
    has_data = (f["days"] > 0) | np.isfinite(f["fan_recent_rpm"]) | np.isfinite(f["temp_now_c"])
    scores = mh.score(f)
    t2 = time.perf_counter()
    idx = np.flatnonzero(has_data)
    strongest = scores.contributions.max(axis=1) if len(rows) else np.array([])
    objs = []
    for i in idx:
        reasons = mh.reasons_for(scores, i) if strongest[i] >= mh.REASON_MIN else []
        features = {k: _round(a[i]) for k, a in scores.values.items()}
        features["days"] = int(f["days"][i])
        features["logits"] = {k: round(float(c), 2) for k, c in zip(mh.SIGNALS, scores.contributions[i],
                                                                   strict=True) if c > 0}  # fmt: skip
        objs.append(MinerHealth(
            miner_id=int(f["miner_id"][i]), score=round(float(scores.score[i]), 4), tier=str(scores.tier[i]),
            reasons=reasons, features=features, computed_at=now,
        ))  # fmt: skip
    _store(objs)
    t3 = time.perf_counter()
    tiers = {t: int(np.sum(scores.tier[idx] == t)) for t in ("ok", "watch", "at_risk")}
    return HealthRun(len(rows), len(objs), len(rows) - len(objs), tiers,
                     {"query": round(t1 - t0, 3), "score": round(t2 - t1, 3), "store": round(t3 - t2, 3)})  # fmt: skip


# --- reads -----------------------------------------------------------------------------------------------------------


def health_list(*, user) -> QuerySet[MinerHealth]:
    """The health rows of the miners ``user`` sees (a client: its own miners only), with what a row shows."""
    from sites.selectors import miner_scope_q

    qs = MinerHealth.objects.select_related("miner", "miner__site", "miner__model", "miner__customer")
    q = miner_scope_q(user, prefix="miner__")
    return qs if q is None else qs.filter(q)


def health_summary_for(user) -> dict:
    qs = health_list(user=user)
    counts = dict(qs.values_list("tier").annotate(n=Count("pk")).values_list("tier", "n"))
    latest = qs.aggregate(at=Max("computed_at"))["at"]
    worst = [
        {"miner_id": h.miner_id, "serial": h.miner.serial, "site": h.miner.site.name, "score": h.score,
         "tier": h.tier, "reasons": [r["text"] for r in h.reasons]}
        for h in qs.exclude(tier=MinerHealth.Tier.OK).order_by("-score", "miner_id")[:TOP]
    ]  # fmt: skip
    return {
        "user_id": user.pk,
        "tiers": {t: counts.get(t, 0) for t in MinerHealth.Tier.values},
        "miners": sum(counts.values()),
        "computed_at": latest.isoformat() if latest else None,
        "worst": worst,
    }


@register_builder("miner_health")
def _summary_entry(*, id: int) -> dict:
    """``miner_health:{id}``: counts per tier and the worst miners among those user ``id`` sees."""
    from django.contrib.auth import get_user_model

    return health_summary_for(get_user_model().objects.get(pk=id))


def health_summary(*, user) -> dict:
    return cache_helper.get("miner_health", id=user.pk).value
