"""Rollups: ``raw`` → ``history_5m`` (+ the site's 5-minute layer) → ``daily`` (+ the site's daily layer).

Each figure has one definition: one SQL statement per layer, run as it is on PostgreSQL and on SQLite,
with only the few expressions the two spell differently (the 5-minute floor of a timestamp, a JSON array
expansion, seconds between two timestamps) taken from ``_Dialect``. The tests run the same hand-computed
windows against both databases.

Re-running a window gives identical rows: each statement is an ``INSERT … SELECT … GROUP BY … ON
CONFLICT DO UPDATE`` over the window (PostgreSQL skips the write when nothing changed). Rows are never
deleted by a rollup, so re-rolling a window whose raw samples have already expired keeps its history.

**5-minute figures** (per miner per window, from its samples in the window):
``sample_count``; ``hashing_count`` (status ``hashing``); ``uptime_fraction`` = hashing / samples;
avg/min/max of hashrate, chip temperature and power; avg/max of inlet and outlet temperature (averages
over the samples that carry the value); ``avg_fan_rpm`` = mean over every fan of every sample;
``min_fan_rpm`` = the slowest fan seen. Shares: counters are cumulative since the miner booted, so each
sample contributes ``counter - previous counter`` to the window it falls in, the previous counter being
that of the miner's last sample that carried counters (a rebooting miner reports none for a while; that
sample may lie in the window before, so consecutive windows add up to the counter's growth). A counter
lower than the previous one is a restart: it counts one in ``restarts`` and contributes its own value
(shares since the boot). A sample whose previous counters are older than ``SHARES_LOOKBACK`` (the first
sample, or after a long silence) contributes nothing and detects no restart: a reboot during a silence
that long is not seen, and the shares of that first interval are not counted.

**Daily figures** (per miner per UTC day, from its 5-minute rows):
``sample_count`` = Σ samples; ``buckets_reported`` = windows with a row; ``avg_hashrate_ths`` = mean of
the windows' averages weighted by their samples; ``energy_kwh`` = Σ avg_power_w × 5 min, over the
windows reported: **a window with no sample counts as no energy** (the miner may have drawn power while
its collector was down; the site's utility meter, not this estimate, is the billing reference, and
``buckets_reported`` shows the coverage). ``uptime_pct`` = 100 × Σ uptime_fraction / windows expected:
**a window the miner was expected to report in but did not counts as down**. Every window of the day is
expected from the miner's creation on (288 for a miner that existed all day; fewer on the day it was
added); never fewer than the windows it did report. Each window weighs five minutes whatever its number
of samples, which is what both an operator (time hashing) and a hosting contract (availability over the
day) mean by uptime. A miner with no sample at all that day has no daily row (reports show "no data").
``customer_id`` is the miner's hosting client at the time of the rollup.

**Site figures**: per window, miners reporting, miners hashing (hashed in at least one sample), fleet
hashrate and power (Σ of the miners' window averages), average and maximum chip temperature, uptime
fraction (Σ hashing / Σ samples). Per day: miners reporting, average fleet hashrate over all 288 windows
(a window with no data counts as 0 TH/s), energy (Σ of the miners' days), uptime (mean of the miners'
``uptime_pct``), maximum chip temperature, restarts.
"""

# ruff: noqa: S608 - the SQL is built from this module's own constants; values are always parameters.
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from hashinsight.events.outbox import publish
from telemetry import partitions
from telemetry.models import History5m, RawSample, RollupCursor
from telemetry.rules import floor_window

WINDOW = timedelta(minutes=5)
WINDOWS_PER_DAY = 288
# How far back the previous sample of a miner is looked for when counting its shares.
SHARES_LOOKBACK = timedelta(minutes=10)
ROLLUP_LOCK_KEY = 0x7E1E_3E7B  # pg_advisory_xact_lock key, next to telemetry.partitions' one
CURSOR_5M = "history_5m"
CURSOR_DAILY = "daily"
CURSOR_DAILY_FINAL = "daily_final"


@dataclass(frozen=True)
class _Dialect:
    bucket: str  # the start of the 5-minute window holding {ts}
    minus_seconds: str  # {ts} minus {s} seconds
    seconds_between: str  # seconds from {a} to {b}
    greatest: str  # the larger of {a} and {b}
    fans: str  # FROM-clause addition: one row ``j`` per fan of raw row ``r``
    fan: str  # that fan's speed
    changed: str  # the upsert's "only if something changed" clause, over {old} and {new}


POSTGRES = _Dialect(
    bucket="date_bin('5 minutes', {ts}, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
    minus_seconds="{ts} - make_interval(secs => {s})",
    seconds_between="extract(epoch FROM ({b} - {a}))",
    greatest="GREATEST({a}, {b})",
    fans=(
        " CROSS JOIN LATERAL (SELECT CAST(x AS DOUBLE PRECISION) AS fan FROM jsonb_array_elements_text("
        "CASE WHEN jsonb_typeof(r.fan_rpm) = 'array' THEN r.fan_rpm ELSE '[]'::jsonb END) AS x) j"
    ),
    fan="j.fan",
    changed=" WHERE ({old}) IS DISTINCT FROM ({new})",
)
SQLITE = _Dialect(
    # %% as every statement runs with parameters; Django stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    bucket=(
        "strftime('%%Y-%%m-%%d %%H:', {ts}) || printf('%%02d', CAST(strftime('%%M', {ts}) AS INTEGER) / 5 * 5) || ':00'"
    ),
    minus_seconds="datetime({ts}, '-' || {s} || ' seconds')",
    seconds_between="((julianday({b}) - julianday({a})) * 86400.0)",
    greatest="max({a}, {b})",
    fans=" CROSS JOIN json_each(r.fan_rpm) AS j",
    fan="j.value",
    changed="",
)


def _dialect() -> _Dialect:
    return POSTGRES if connection.vendor == "postgresql" else SQLITE


def _upsert(dialect: _Dialect, table: str, key: list[str], cols: list[str]) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
    where = ""
    if dialect.changed:
        old = ", ".join(f"{table}.{c}" for c in cols)
        new = ", ".join(f"excluded.{c}" for c in cols)
        where = dialect.changed.format(old=old, new=new)
    return f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}{where}"


_H5M_COLS = [
    "site_id", "customer_id", "sample_count", "hashing_count", "uptime_fraction",
    "avg_hashrate_ths", "min_hashrate_ths", "max_hashrate_ths",
    "avg_temp_chip_max_c", "min_temp_chip_max_c", "max_temp_chip_max_c",
    "avg_temp_inlet_c", "max_temp_inlet_c", "avg_temp_outlet_c", "max_temp_outlet_c",
    "avg_power_w", "min_power_w", "max_power_w", "avg_fan_rpm", "min_fan_rpm",
    "accepted_shares", "rejected_shares", "restarts",
]  # fmt: skip


def _history_sql(d: _Dialect) -> str:
    """Three aggregates of the window's samples joined per miner and window: the metrics (one pass, no
    sort), the fans (one row per fan), and the shares, where a window function over the counter-bearing
    samples alone (a narrow sort, from ``SHARES_LOOKBACK`` before the window) pairs each with the previous."""
    bucket = d.bucket.format(ts="r.ts")
    in_window = "r.ts >= %(start)s AND r.ts < %(end)s"
    chained = (
        f"prev_ts IS NOT NULL AND prev_ts >= {d.minus_seconds.format(ts='ts', s=int(SHARES_LOOKBACK.total_seconds()))}"
    )
    return f"""
WITH m AS (
    SELECT r.miner_id, {bucket} AS bucket, max(r.site_id) AS site_id, max(r.customer_id) AS customer_id,
           count(*) AS n,
           sum(CASE WHEN r.status = 'hashing' THEN 1 ELSE 0 END) AS hashing,
           avg(r.hashrate_ths) AS avg_h, min(r.hashrate_ths) AS min_h, max(r.hashrate_ths) AS max_h,
           avg(r.temp_chip_max_c) AS avg_t, min(r.temp_chip_max_c) AS min_t, max(r.temp_chip_max_c) AS max_t,
           avg(r.temp_inlet_c) AS avg_in, max(r.temp_inlet_c) AS max_in,
           avg(r.temp_outlet_c) AS avg_out, max(r.temp_outlet_c) AS max_out,
           avg(r.power_w) AS avg_p, min(r.power_w) AS min_p, max(r.power_w) AS max_p
    FROM telemetry_raw r WHERE {in_window}
    GROUP BY r.miner_id, {bucket}
), fans AS (
    SELECT r.miner_id, {bucket} AS bucket, sum({d.fan}) AS fan_sum, count({d.fan}) AS fan_n,
           min({d.fan}) AS fan_min
    FROM telemetry_raw r{d.fans} WHERE {in_window}
    GROUP BY r.miner_id, {bucket}
), c AS (
    SELECT r.miner_id, r.ts, r.accepted_shares AS acc, r.rejected_shares AS rej,
           LAG(r.ts) OVER w AS prev_ts, LAG(r.accepted_shares) OVER w AS prev_acc,
           LAG(r.rejected_shares) OVER w AS prev_rej
    FROM telemetry_raw r
    WHERE r.ts >= %(lookback)s AND r.ts < %(end)s AND r.accepted_shares IS NOT NULL
    WINDOW w AS (PARTITION BY r.miner_id ORDER BY r.ts)
), pairs AS (
    -- restarted: 1 a restart, 0 a plain step, NULL no previous counters close enough (contributes nothing)
    SELECT miner_id, {d.bucket.format(ts="ts")} AS bucket, acc, rej, prev_acc, prev_rej,
           CASE WHEN NOT ({chained}) THEN NULL WHEN acc < prev_acc OR rej < prev_rej THEN 1 ELSE 0 END AS restarted
    FROM c WHERE ts >= %(start)s
), sh AS (
    SELECT miner_id, bucket,
           sum(CASE WHEN restarted IS NULL THEN 0 WHEN restarted = 1 THEN acc ELSE acc - prev_acc END) AS acc,
           sum(CASE WHEN restarted IS NULL OR rej IS NULL THEN 0 WHEN restarted = 1 THEN rej
                    WHEN prev_rej IS NULL THEN 0 ELSE rej - prev_rej END) AS rej,
           sum(coalesce(restarted, 0)) AS restarts
    FROM pairs GROUP BY miner_id, bucket
)
INSERT INTO telemetry_history_5m (miner_id, bucket, {", ".join(_H5M_COLS)})
SELECT m.miner_id, m.bucket, m.site_id, m.customer_id, m.n, m.hashing, CAST(m.hashing AS DOUBLE PRECISION) / m.n,
       m.avg_h, m.min_h, m.max_h, m.avg_t, m.min_t, m.max_t, m.avg_in, m.max_in, m.avg_out, m.max_out,
       m.avg_p, m.min_p, m.max_p, CAST(f.fan_sum AS DOUBLE PRECISION) / nullif(f.fan_n, 0), f.fan_min,
       coalesce(sh.acc, 0), coalesce(sh.rej, 0), coalesce(sh.restarts, 0)
FROM m
LEFT JOIN fans f ON f.miner_id = m.miner_id AND f.bucket = m.bucket
LEFT JOIN sh ON sh.miner_id = m.miner_id AND sh.bucket = m.bucket
WHERE true
{_upsert(d, "telemetry_history_5m", ["miner_id", "bucket"], _H5M_COLS)}
"""


_SITE_H5M_COLS = [
    "miners_reporting", "miners_hashing", "hashrate_ths", "power_w",
    "avg_temp_chip_max_c", "max_temp_chip_max_c", "uptime_fraction",
]  # fmt: skip


def _site_history_sql(d: _Dialect) -> str:
    return f"""
INSERT INTO telemetry_site_history_5m (site_id, bucket, {", ".join(_SITE_H5M_COLS)})
SELECT site_id, bucket, count(*), sum(CASE WHEN hashing_count > 0 THEN 1 ELSE 0 END),
       coalesce(sum(avg_hashrate_ths), 0), coalesce(sum(avg_power_w), 0),
       avg(avg_temp_chip_max_c), max(max_temp_chip_max_c),
       CAST(sum(hashing_count) AS DOUBLE PRECISION) / sum(sample_count)
FROM telemetry_history_5m
WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY site_id, bucket
{_upsert(d, "telemetry_site_history_5m", ["site_id", "bucket"], _SITE_H5M_COLS)}
"""


_DAILY_COLS = [
    "site_id", "customer_id", "sample_count", "buckets_reported", "avg_hashrate_ths", "energy_kwh",
    "uptime_pct", "max_temp_chip_c", "restarts", "accepted_shares", "rejected_shares",
]  # fmt: skip


def _daily_sql(d: _Dialect) -> str:
    # Windows expected of a miner: every window of the day from the one it was created in.
    since_start = d.seconds_between.format(a="%(start)s", b="m.created_at")
    expected = (
        f"CASE WHEN m.created_at IS NULL OR m.created_at <= %(start)s THEN {WINDOWS_PER_DAY} "
        f"ELSE {WINDOWS_PER_DAY} - CAST({since_start} AS INTEGER) / 300 END"
    )
    return f"""
WITH h AS (
    SELECT miner_id, max(site_id) AS site_id, sum(sample_count) AS sample_count, count(*) AS buckets,
           sum(avg_hashrate_ths * sample_count)
             / nullif(sum(CASE WHEN avg_hashrate_ths IS NOT NULL THEN sample_count ELSE 0 END), 0) AS avg_h,
           coalesce(sum(avg_power_w), 0) / 12000.0 AS energy,
           sum(uptime_fraction) AS up, max(max_temp_chip_max_c) AS max_t, sum(restarts) AS restarts,
           sum(accepted_shares) AS acc, sum(rejected_shares) AS rej
    FROM telemetry_history_5m
    WHERE bucket >= %(start)s AND bucket < %(end)s
    GROUP BY miner_id
)
INSERT INTO telemetry_daily (miner_id, day, {", ".join(_DAILY_COLS)})
SELECT h.miner_id, %(day)s, h.site_id, m.customer_id, h.sample_count, h.buckets, h.avg_h, h.energy,
       100.0 * h.up / {d.greatest.format(a="h.buckets", b=expected)},
       h.max_t, h.restarts, h.acc, h.rej
FROM h LEFT JOIN miners_miner m ON m.id = h.miner_id
WHERE true
{_upsert(d, "telemetry_daily", ["miner_id", "day"], _DAILY_COLS)}
"""


_SITE_DAILY_COLS = [
    "miners_reporting", "avg_hashrate_ths", "energy_kwh", "uptime_pct", "max_temp_chip_c", "restarts",
]  # fmt: skip


def _site_daily_sql(d: _Dialect) -> str:
    return f"""
WITH dd AS (
    SELECT site_id, count(*) AS n, sum(energy_kwh) AS energy, avg(uptime_pct) AS up,
           max(max_temp_chip_c) AS max_t, sum(restarts) AS restarts
    FROM telemetry_daily WHERE day = %(day)s GROUP BY site_id
), sh AS (
    SELECT site_id, sum(hashrate_ths) / {float(WINDOWS_PER_DAY)} AS avg_h
    FROM telemetry_site_history_5m WHERE bucket >= %(start)s AND bucket < %(end)s GROUP BY site_id
)
INSERT INTO telemetry_site_daily (site_id, day, {", ".join(_SITE_DAILY_COLS)})
SELECT dd.site_id, %(day)s, dd.n, coalesce(sh.avg_h, 0), dd.energy, dd.up, dd.max_t, dd.restarts
FROM dd LEFT JOIN sh ON sh.site_id = dd.site_id
WHERE true
{_upsert(d, "telemetry_site_daily", ["site_id", "day"], _SITE_DAILY_COLS)}
"""


# ---------------------------------------------------------------------------------------------------


def _params(**values) -> dict:
    ops = connection.ops
    out = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            out[name] = ops.adapt_datetimefield_value(value)
        elif isinstance(value, date):
            out[name] = ops.adapt_datefield_value(value)
        else:
            out[name] = value
    return out


def _tune(cursor) -> None:
    if connection.vendor == "postgresql":
        # Sorts and hash tables over a few minutes of every miner's samples: in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # Compiling these plans (JIT) costs more than it saves: measured 1–2 s of a 5 s rollup.
        cursor.execute("SET LOCAL jit = off")


def rollup_5m(window_start: datetime, window_end: datetime) -> list[int]:
    """Roll raw samples in [window_start, window_end) (whole 5-minute windows, UTC) into ``history_5m``
    and the site 5-minute layer. Returns the ids of the sites that have rows in the range, sorted."""
    if floor_window(window_start) != window_start or floor_window(window_end) != window_end:
        raise ValueError("rollup windows start and end on a 5-minute boundary")
    if window_end <= window_start:
        raise ValueError("window_end must be after window_start")
    d = _dialect()
    params = _params(start=window_start, end=window_end, lookback=window_start - SHARES_LOOKBACK)
    partitions.summarize_new_ranges(partitions.RAW)
    with transaction.atomic(), connection.cursor() as cursor:
        _tune(cursor)
        cursor.execute(_history_sql(d), params)
        cursor.execute(_site_history_sql(d), params)
        cursor.execute(
            "SELECT DISTINCT site_id FROM telemetry_site_history_5m WHERE bucket >= %(start)s AND bucket < %(end)s",
            params,
        )
        return sorted(row[0] for row in cursor.fetchall())


def rollup_daily(day: date) -> list[int]:
    """Roll the 5-minute rows of UTC ``day`` into ``daily`` and the site daily layer. Returns the ids
    of the sites that have a row for the day, sorted."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    d = _dialect()
    params = _params(start=start, end=start + timedelta(days=1), day=day)
    with transaction.atomic(), connection.cursor() as cursor:
        _tune(cursor)
        cursor.execute(_daily_sql(d), params)
        cursor.execute(_site_daily_sql(d), params)
        cursor.execute("SELECT DISTINCT site_id FROM telemetry_site_daily WHERE day = %(day)s", params)
        return sorted(row[0] for row in cursor.fetchall())


# ---------------------------------------------------------------------------------------------------
# What the periodic jobs run: where to start from the cursors, how far to go, what to publish.


def _lock_rollups() -> None:
    """One rollup run at a time (two would upsert the same rows in different orders)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])


def _cursor(layer: str) -> RollupCursor | None:
    return RollupCursor.objects.select_for_update().filter(layer=layer).first()


def _advance(layer: str, until: datetime) -> None:
    RollupCursor.objects.update_or_create(layer=layer, defaults={"done_until": until})


def note_late_samples(oldest: datetime, *, now: datetime | None = None) -> bool:
    """Ingest calls this in its transaction with a batch's oldest accepted sample. Samples older than the
    windows the 5-minute job still rolls again (a collector replaying its spool after an outage) move its
    cursor back to the oldest one's window, so the next runs roll those windows again (and the daily job,
    the days they belong to). Without a query when the sample is recent, as nearly all are. Returns
    whether the cursor was moved."""
    now = now or timezone.now()
    still_rerolled = floor_window(now - timedelta(seconds=settings.TELEMETRY_ROLLUP_GRACE_S)) - (
        settings.TELEMETRY_ROLLUP_REROLL_WINDOWS * WINDOW
    )
    if oldest >= still_rerolled:
        return False
    window = floor_window(oldest)
    return bool(RollupCursor.objects.filter(layer=CURSOR_5M, done_until__gt=window).update(done_until=window))


def rollup_pending_5m(*, now: datetime | None = None) -> dict:
    """Roll every complete 5-minute window since the cursor (a window is complete ``GRACE`` after its
    end), at most ``MAX_WINDOWS`` per call, plus the last ``REROLL_WINDOWS`` windows already done so
    samples that came late are counted. With no cursor yet, starts at the oldest raw sample kept.
    Publishes ``telemetry.rolled_up`` with the sites concerned, in the same transaction."""
    now = now or timezone.now()
    target = floor_window(now - timedelta(seconds=settings.TELEMETRY_ROLLUP_GRACE_S))
    with transaction.atomic():
        _lock_rollups()
        cursor = _cursor(CURSOR_5M)
        # Windows older than raw retention have nothing left to roll up: never start before it.
        horizon = floor_window(now - timedelta(hours=settings.TELEMETRY_RAW_RETENTION_HOURS))
        if cursor is not None:
            done = max(floor_window(cursor.done_until), horizon)
        else:
            oldest = RawSample.objects.order_by("ts").values_list("ts", flat=True).first()
            done = max(floor_window(oldest), horizon) if oldest else target
        end = min(target, done + settings.TELEMETRY_ROLLUP_MAX_WINDOWS * WINDOW)
        start = min(done, end - settings.TELEMETRY_ROLLUP_REROLL_WINDOWS * WINDOW) if end == target else done
        if end <= start:
            return {"windows": 0, "site_ids": []}
        site_ids = rollup_5m(start, end)
        if end > done or cursor is None:
            _advance(CURSOR_5M, max(end, done))
        # Windows of days the daily rollup has already done (late samples): those days are rolled again.
        RollupCursor.objects.filter(layer=CURSOR_DAILY, done_until__gt=start).update(
            done_until=datetime.combine(start.astimezone(UTC).date(), time.min, tzinfo=UTC)
        )
        if site_ids:
            publish(
                "telemetry.rolled_up",
                aggregate=f"history_5m:{start:%Y%m%dT%H%M}",
                payload={"layer": "history_5m", "window_start": start, "window_end": end, "site_ids": site_ids},
            )
    return {
        "windows": int((end - start) / WINDOW),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "site_ids": site_ids,
        "behind_windows": int((target - end) / WINDOW),
    }


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def rollup_pending_daily(*, now: datetime | None = None, max_days: int = 7) -> dict:
    """Roll each complete UTC day not yet done, at most ``max_days`` per call (a day is complete once
    the 5-minute job has rolled and re-rolled its last window), then once more, a single time, each day
    that ended ``TELEMETRY_DAILY_FINAL_DELAY_S`` ago (late 5-minute re-rolls and collectors replaying
    their spool are in by then). With no cursor yet, starts at the oldest 5-minute row kept.
    Publishes ``telemetry.rolled_up`` per day rolled."""
    now = now or timezone.now()
    settle = (
        timedelta(seconds=settings.TELEMETRY_ROLLUP_GRACE_S) + (settings.TELEMETRY_ROLLUP_REROLL_WINDOWS + 1) * WINDOW
    )
    last_complete = (now - settle).astimezone(UTC).date() - timedelta(days=1)
    # Days before this one have ended at least FINAL_DELAY ago.
    final_due_before = (now - timedelta(seconds=settings.TELEMETRY_DAILY_FINAL_DELAY_S)).astimezone(UTC).date()
    with transaction.atomic():
        _lock_rollups()
        cursor, final = _cursor(CURSOR_DAILY), _cursor(CURSOR_DAILY_FINAL)
        if cursor is not None:
            next_day = cursor.done_until.astimezone(UTC).date()
        else:
            oldest = History5m.objects.order_by("bucket").values_list("bucket", flat=True).first()
            horizon = (now - timedelta(days=settings.TELEMETRY_HISTORY_RETENTION_DAYS)).astimezone(UTC).date()
            next_day = max(oldest.astimezone(UTC).date(), horizon) if oldest else last_complete + timedelta(days=1)
        next_final = final.done_until.astimezone(UTC).date() if final is not None else next_day
        # Rolled once already, final roll now due; then the days never rolled.
        finals = _days(next_final, min(final_due_before, next_day))
        firsts = _days(next_day, last_complete + timedelta(days=1))[:max_days]
        for day in [*finals, *firsts]:
            site_ids = rollup_daily(day)
            if site_ids:
                publish(
                    "telemetry.rolled_up",
                    aggregate=f"daily:{day:%Y%m%d}",
                    payload={
                        "layer": "daily",
                        "window_start": _day_start(day),
                        "window_end": _day_start(day + timedelta(days=1)),
                        "site_ids": site_ids,
                    },
                )
        if firsts:
            next_day = firsts[-1] + timedelta(days=1)
        # A day first rolled after its final delay needs no second roll.
        next_final = max(next_final, min(final_due_before, next_day))
        _advance(CURSOR_DAILY, _day_start(next_day))
        _advance(CURSOR_DAILY_FINAL, _day_start(next_final))
    return {"days": [day.isoformat() for day in firsts], "final_days": [day.isoformat() for day in finals]}


def _days(first: date, stop: date) -> list[date]:
    return [first + timedelta(days=n) for n in range(max(0, (stop - first).days))]
