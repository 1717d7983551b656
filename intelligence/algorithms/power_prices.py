"""Power price series: the shipped ERCOT prices and uploaded CSVs, as plain arrays (no Django).

A :class:`PriceSeries` is a regular series of interval starts (UTC, ``datetime64[m]``) and prices in USD/MWh.
The shipped files (``intelligence/data/``, provenance in ``PROVENANCE.md`` there) are ERCOT's hub average:
day-ahead hourly (``load_hourly(column="da")``), the hourly mean/min/max of real-time, and real-time 15-minute
prices (``load_15min()``). ``parse_price_csv`` reads an uploaded CSV (``timestamp_utc,usd_per_mwh``) with the
same checks the shipped files pass: parseable, finite, strictly increasing, one regular step, no gaps.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
HOURLY_CSV = DATA_DIR / "power_prices_hourly_ercot.csv"
RT_15MIN_CSV = DATA_DIR / "power_prices_15min_ercot_rt.csv"
HOURLY_COLUMNS = {
    "da": "da_spp_usd_per_mwh",
    "rt_mean": "rt_spp_mean_usd_per_mwh",
    "rt_min": "rt_spp_min_usd_per_mwh",
    "rt_max": "rt_spp_max_usd_per_mwh",
}
ERCOT_TZ = "America/Chicago"
MAX_UPLOAD_ROWS = 200_000


class PriceDataError(ValueError):
    """A price file or upload that cannot be used: ``row`` is the 1-based data row (None: the file as a whole)."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message if row is None else f"row {row}: {message}")
        self.code = "invalid_price_data"
        self.message = message
        self.row = row
        self.column = column


@dataclass(frozen=True, eq=False)
class PriceSeries:
    start_utc: np.ndarray  # datetime64[m], interval starts, strictly increasing, regular
    usd_per_mwh: np.ndarray  # float64
    step_minutes: int
    name: str = ""

    def __len__(self) -> int:
        return len(self.usd_per_mwh)

    @property
    def step_hours(self) -> float:
        return self.step_minutes / 60

    def window(self, start: datetime, hours: float) -> PriceSeries:
        """The intervals starting in [start, start + hours) (``start`` aware or naive UTC)."""
        lo = _to_m64(start)
        hi = lo + np.timedelta64(round(hours * 60), "m")
        keep = (self.start_utc >= lo) & (self.start_utc < hi)
        return PriceSeries(self.start_utc[keep], self.usd_per_mwh[keep], self.step_minutes, self.name)

    def day(self, day: date, tz: str = "UTC") -> PriceSeries:
        """One calendar day in ``tz`` (23, 24 or 25 hours on DST days in a local zone)."""
        zone = ZoneInfo(tz)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        hours = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600
        return self.window(start, hours)

    def hourly_mean(self) -> PriceSeries:
        """Mean of the intervals in each whole hour (the series must start on the hour)."""
        per_hour = 60 // self.step_minutes
        if per_hour == 1:
            return self
        n = len(self) // per_hour * per_hour
        values = self.usd_per_mwh[:n].reshape(-1, per_hour).mean(axis=1)
        return PriceSeries(self.start_utc[:n:per_hour], values, 60, self.name)

    def datetimes(self) -> list[datetime]:
        return [datetime.fromisoformat(str(t)).replace(tzinfo=UTC) for t in self.start_utc]


def _to_m64(moment: datetime) -> np.datetime64:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "m")


def _parse_times(values: list[str], first_row: int = 1) -> np.ndarray:
    out = np.empty(len(values), dtype="datetime64[m]")
    for i, raw in enumerate(values):
        text = raw.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PriceDataError(f"{raw!r} is not an ISO-8601 time", row=first_row + i, column="timestamp_utc") from exc
        if moment.tzinfo is None:
            raise PriceDataError(f"{raw!r} has no time zone (give UTC, e.g. 'Z')", row=first_row + i)
        out[i] = _to_m64(moment)
    return out


def _series(times: np.ndarray, values: np.ndarray, name: str) -> PriceSeries:
    if len(times) == 0:
        raise PriceDataError("no rows")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise PriceDataError("price is not a number", row=int(bad[0]) + 1, column="usd_per_mwh")
    if len(times) == 1:
        raise PriceDataError("one row: the step cannot be told")
    steps = np.diff(times).astype(int)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 2
        raise PriceDataError("times must be strictly increasing", row=row, column="timestamp_utc")
    step = int(steps[0])
    if (steps != step).any():
        row = int(np.flatnonzero(steps != step)[0]) + 2
        raise PriceDataError(f"gap or irregular step (expected {step} min)", row=row, column="timestamp_utc")
    if step not in (5, 15, 30, 60):
        raise PriceDataError(f"a step of {step} min is not supported (5, 15, 30 or 60)")
    return PriceSeries(times, values, step, name)


def _read(path: Path, value_column: str) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        times, values = [], []
        for row in reader:
            times.append(row["timestamp_utc"])
            values.append(row[value_column])
    return _parse_fast(times), np.array(values, dtype=float)


def _parse_fast(values: list[str]) -> np.ndarray:
    """The shipped files' "YYYY-MM-DDTHH:MM:SSZ" strings, parsed by numpy (falls back to the careful parser)."""
    if all(v.endswith("Z") for v in values):
        try:
            return np.array([v[:-1] for v in values], dtype="datetime64[m]")
        except ValueError:
            pass
    return _parse_times(values)


@lru_cache(maxsize=8)
def load_hourly(column: str = "da", path: Path = HOURLY_CSV) -> PriceSeries:
    """The shipped hourly ERCOT series: ``da`` (day-ahead), ``rt_mean``, ``rt_min`` or ``rt_max``."""
    if column not in HOURLY_COLUMNS:
        raise ValueError(f"column must be one of {sorted(HOURLY_COLUMNS)}")
    times, values = _read(path, HOURLY_COLUMNS[column])
    return _series(times, values, f"ercot_hb_hubavg_{column}")


@lru_cache(maxsize=2)
def load_15min(path: Path = RT_15MIN_CSV) -> PriceSeries:
    """The shipped real-time 15-minute ERCOT series."""
    times, values = _read(path, "rt_spp_usd_per_mwh")
    return _series(times, values, "ercot_hb_hubavg_rt15")


def parse_price_csv(text: str, *, name: str = "upload") -> PriceSeries:
    """An uploaded CSV with a header ``timestamp_utc,usd_per_mwh`` (other columns ignored)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"timestamp_utc", "usd_per_mwh"} - set(reader.fieldnames or ())
    if missing:
        raise PriceDataError(f"missing column(s): {', '.join(sorted(missing))}")
    times, values = [], []
    for i, row in enumerate(reader, start=1):
        if i > MAX_UPLOAD_ROWS:
            raise PriceDataError(f"more than {MAX_UPLOAD_ROWS} rows")
        times.append(row["timestamp_utc"] or "")
        try:
            value = float(row["usd_per_mwh"])
        except (TypeError, ValueError) as exc:
            raise PriceDataError(f"{row['usd_per_mwh']!r} is not a number", row=i, column="usd_per_mwh") from exc
        if not math.isfinite(value):
            raise PriceDataError("price is not a number", row=i, column="usd_per_mwh")
        values.append(value)
    return _series(_parse_times(times), np.array(values, dtype=float), name)
