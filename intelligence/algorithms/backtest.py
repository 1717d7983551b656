"""Walk-forward backtest of forecasters, and the rule that picks the active model.

At each origin the model sees the history up to and including that day only (the series and the exogenous
frame are cut there before the model gets them), forecasts ``max(horizons)`` days, and is scored at each
horizon h on the actual value h days later. Parameters are refitted every ``refit_every`` origins; in between
the fitted model only receives the newer data (``Forecaster.update``), as a production model between its
scheduled retrainings would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from intelligence.algorithms.forecast import Forecaster, prepare_series

BASELINE = "naive"


@dataclass(frozen=True)
class Metrics:
    """Errors of one model at one horizon over the backtest's origins (pct figures in %)."""

    model: str
    horizon: int
    n: int
    rmse: float
    rmse_pct: float  # root mean squared relative error, %
    mae: float
    mape: float
    coverage80: float  # share of actuals inside the 80 % interval, %
    coverage95: float
    failures: int = 0  # origins where the model raised instead of forecasting

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def error_metrics(actual, predicted, lower80=None, upper80=None, lower95=None, upper95=None) -> dict[str, float]:
    """RMSE, relative RMSE %, MAE, MAPE % and interval coverage % (bounds inclusive). NaN pairs are skipped;
    relative figures skip zero actuals."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    a, p = a[ok], p[ok]
    if not len(a):
        nan = float("nan")
        return {"n": 0, "rmse": nan, "rmse_pct": nan, "mae": nan, "mape": nan, "coverage80": nan, "coverage95": nan}
    e = p - a
    nz = a != 0
    rel = e[nz] / np.abs(a[nz])
    out = {
        "n": len(a),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "rmse_pct": float(np.sqrt(np.mean(rel**2)) * 100) if nz.any() else float("nan"),
        "mae": float(np.mean(np.abs(e))),
        "mape": float(np.mean(np.abs(rel)) * 100) if nz.any() else float("nan"),
    }
    for level, lo, hi in ((80, lower80, upper80), (95, lower95, upper95)):
        if lo is None or hi is None:
            out[f"coverage{level}"] = float("nan")
        else:
            lo_, hi_ = np.asarray(lo, dtype=float)[ok], np.asarray(hi, dtype=float)[ok]
            out[f"coverage{level}"] = float(np.mean((a >= lo_) & (a <= hi_)) * 100)
    return out


@dataclass
class BacktestResult:
    target: str
    horizons: tuple[int, ...]
    origins: list[pd.Timestamp]
    metrics: list[Metrics]
    predictions: pd.DataFrame  # model, origin, horizon, date, actual, mean, lower80, upper80, lower95, upper95
    seconds: dict[str, float] = field(default_factory=dict)  # fit + predict time per model
    errors: dict[str, list[str]] = field(default_factory=dict)  # model → messages of failed origins

    def metric(self, model: str, horizon: int) -> Metrics | None:
        return next((m for m in self.metrics if m.model == model and m.horizon == horizon), None)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([m.as_dict() for m in self.metrics])


def origins_between(index: pd.DatetimeIndex, *, start, end=None, step_days: int = 7, last_horizon: int = 0):
    """Origins every ``step_days`` from ``start`` while ``last_horizon`` days of actuals remain after them."""
    start = pd.Timestamp(start)
    stop = index[-1] - pd.Timedelta(days=last_horizon)
    if end is not None:
        stop = min(stop, pd.Timestamp(end))
    return list(pd.date_range(start, stop, freq=f"{step_days}D"))


def walk_forward(
    y: pd.Series,
    models: Mapping[str, Callable[[], Forecaster]],
    *,
    horizons: Sequence[int] = (7, 30),
    origins: Sequence | None = None,
    start=None,
    end=None,
    step_days: int = 7,
    refit_every: int = 4,
    exog: pd.DataFrame | None = None,
    target: str = "series",
) -> BacktestResult:
    """Backtest each model (a factory making a fresh, unfitted forecaster) on ``y``.

    ``origins`` (dates) or ``start``/``end``/``step_days`` choose where forecasts are made. A model that raises
    at an origin is counted in ``failures`` for that origin and tried again (refitted) at the next one."""
    y = prepare_series(y, name=target)
    horizons = tuple(sorted({int(h) for h in horizons}))
    h_max = max(horizons)
    if origins is None:
        if start is None:
            raise ValueError("give origins or start")
        origins = origins_between(y.index, start=start, end=end, step_days=step_days, last_horizon=min(horizons))
    origins = [pd.Timestamp(o) for o in origins]
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    errors: dict[str, list[str]] = {}
    failures: dict[str, int] = {}
    for name, factory in models.items():
        model: Forecaster | None = None
        spent = 0.0
        failures[name] = 0
        for i, origin in enumerate(origins):
            past = y.loc[:origin]  # the model never receives anything after the origin
            past_exog = None if exog is None else exog.loc[:origin]
            t0 = time.perf_counter()
            try:
                if model is None or i % refit_every == 0:
                    model = factory().fit(past, past_exog)
                else:
                    model.update(past, past_exog)
                fc = model.predict(h_max)
            except Exception as exc:  # a model may fail on some history; the baseline and the others go on
                failures[name] += 1
                errors.setdefault(name, []).append(f"{origin.date()}: {type(exc).__name__}: {exc}")
                model = None
                spent += time.perf_counter() - t0
                continue
            spent += time.perf_counter() - t0
            for h in horizons:
                day = origin + pd.Timedelta(days=h)
                if day not in y.index:
                    continue
                rows.append(
                    {
                        "model": name,
                        "origin": origin,
                        "horizon": h,
                        "date": day,
                        "actual": float(y.loc[day]),
                        "mean": float(fc.mean[h - 1]),
                        "lower80": float(fc.lower80[h - 1]),
                        "upper80": float(fc.upper80[h - 1]),
                        "lower95": float(fc.lower95[h - 1]),
                        "upper95": float(fc.upper95[h - 1]),
                    }
                )
        seconds[name] = spent
    columns = ["model", "origin", "horizon", "date", "actual", "mean", "lower80", "upper80", "lower95", "upper95"]
    predictions = pd.DataFrame(rows, columns=columns)
    metrics = []
    for name in models:
        for h in horizons:
            part = predictions[(predictions.model == name) & (predictions.horizon == h)]
            m = error_metrics(part.actual, part["mean"], part.lower80, part.upper80, part.lower95, part.upper95)
            metrics.append(Metrics(model=name, horizon=h, failures=failures[name], **m))
    return BacktestResult(target, horizons, origins, metrics, predictions, seconds, errors)


# --- choosing the active model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A trained model as the registry knows it: its latest backtest score (lower is better, e.g. MAPE at the
    reference horizon; None when it has none), when it was trained, and whether its last run failed."""

    name: str
    score: float | None
    trained_at: datetime | None
    failed: bool = False


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    rejected: dict[str, str]  # model → why it was not chosen


def choose_active(
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    max_age: timedelta,
    baseline: str = BASELINE,
    metric: str = "MAPE",
) -> Choice:
    """The model to serve: the best-scoring candidate that did not fail, is not older than ``max_age`` and beats
    the baseline's score in the latest backtest; otherwise the baseline (the naive/rule mode). The baseline is
    served even when it has no score itself: it needs no training and cannot go stale."""
    by_name = {c.name: c for c in candidates}
    base = by_name.get(baseline)
    base_score = base.score if base is not None else None
    rejected: dict[str, str] = {}
    eligible: list[Candidate] = []
    for c in candidates:
        if c.name == baseline:
            continue
        if c.failed:
            rejected[c.name] = "its last training or forecast failed"
        elif c.trained_at is None or now - c.trained_at > max_age:
            age = "never trained" if c.trained_at is None else f"trained {_age(now - c.trained_at)} ago"
            rejected[c.name] = f"stale ({age}; limit {_age(max_age)})"
        elif c.score is None or not math.isfinite(c.score):
            rejected[c.name] = "no backtest score"
        elif base_score is None or not math.isfinite(base_score):
            rejected[c.name] = f"no {baseline} score to compare with"
        elif c.score >= base_score:
            rejected[c.name] = f"{metric} {c.score:.2f} does not beat {baseline} {base_score:.2f}"
        else:
            eligible.append(c)
    if not eligible:
        return Choice(baseline, f"fallback to {baseline}: no model qualifies", rejected)
    best = min(eligible, key=lambda c: c.score)
    for c in eligible:
        if c is not best:
            rejected[c.name] = f"{metric} {c.score:.2f} behind {best.name} {best.score:.2f}"
    return Choice(best.name, f"{metric} {best.score:.2f} beats {baseline} {base_score:.2f}", rejected)


def candidates_from(result: BacktestResult, *, horizon: int, trained_at: datetime, metric: str = "mape"):
    """Candidates scored by one metric at one horizon of a backtest. A model counts as failed when it produced
    nothing or failed at more than 10 % of the origins."""
    out = []
    total = max(1, len(result.origins))
    for m in result.metrics:
        if m.horizon == horizon:
            failed = m.n == 0 or m.failures > 0.1 * total
            out.append(Candidate(m.model, getattr(m, metric), trained_at, failed=failed))
    return out


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} h"
