"""Forecasts as the product serves them: the network series, the model registry (train, activate, roll back) and
the forecast service with its naive fallback, plus revenue per user. Writes go through the ``model_*`` and
``forecast_*`` services (one transaction each); reads through the selectors at the bottom.

The algorithms are ``intelligence.algorithms.forecast`` / ``backtest`` (no Django); this module feeds them the
series and keeps their results in ``ForecastModel`` and ``Forecast``.

The series (``network_frame``): BTC price, difficulty, network hashrate from ``MarketDay`` (``manage.py
load_market``), or the shipped CSV when that table is empty; hashprice (USD per TH/s per day) from price,
difficulty and the halving-schedule subsidy, **without fees**, exactly as the backtest bench computes it (the
shipped fee data cover a third of the days; switching fees in and out would put jumps into the series). Revenue
adds fees back as the last week's median fee share of the block reward.

Which model serves a target (``forecast_make``): the active one, unless none is active, its latest backtest
says it failed or lost to naive, its training data end more than ``FORECAST_MODEL_MAX_AGE_DAYS`` before the
latest market day (stale), or it raises now; then the naive baseline serves, and the Forecast names why.
Staleness is measured against the latest market day, not the wall clock: the shipped history ends in the past,
and what makes a model stale is newer data it has not seen."""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from hashinsight.accounts.roles import GLOBAL_ROLES, role_of
from hashinsight.core.cache import register_builder
from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from hashinsight.events.audit import audit_append
from hashinsight.events.models import AuditEvent
from intelligence.algorithms import backtest as bt
from intelligence.algorithms import forecast as fa
from intelligence.algorithms.hashprice import hashprice_usd_per_th_day
from intelligence.models import Forecast, ForecastModel, ForecastTarget, MarketDay

log = logging.getLogger(__name__)
Algorithm = ForecastModel.Algorithm
Status = ForecastModel.Status

NETWORK = ""  # the subject of the network's series (price, difficulty, hashprice)
NETWORK_TARGETS = (ForecastTarget.BTC_PRICE, ForecastTarget.DIFFICULTY, ForecastTarget.HASHPRICE)
COLUMN = {
    ForecastTarget.BTC_PRICE: "price_usd",
    ForecastTarget.DIFFICULTY: "difficulty",
    ForecastTarget.HASHPRICE: "hashprice",
}
UNIT = {
    ForecastTarget.BTC_PRICE: "USD",
    ForecastTarget.DIFFICULTY: "",
    ForecastTarget.HASHPRICE: "USD/TH/s/day",
    ForecastTarget.REVENUE: "USD/day",
}
# What may be trained for each target; the first non-naive one is the default of a training request.
ALGORITHMS = {
    ForecastTarget.BTC_PRICE: (Algorithm.PROPHET, Algorithm.XGBOOST, Algorithm.NAIVE),
    ForecastTarget.DIFFICULTY: (Algorithm.DIFFICULTY_EPOCH, Algorithm.XGBOOST, Algorithm.PROPHET, Algorithm.NAIVE),
    ForecastTarget.HASHPRICE: (Algorithm.HASHPRICE_COMPOSITE, Algorithm.XGBOOST, Algorithm.PROPHET, Algorithm.NAIVE),
}
HORIZONS = (7, 14, 30)
REFERENCE_HORIZON = 7  # the horizon whose MAPE decides "beats naive" (the targets are at 7 days)
DEFAULT_HORIZON = 30
POOL_FEE = Decimal("0.02")  # intelligence.profitability.DEFAULT_POOL_FEE_PCT, as a share


def _algorithm_name(model) -> str:
    """The algorithm's English name, for reasons stored in the database (whatever language the request speaks)."""
    from django.utils import translation

    with translation.override("en"):
        return str(model.get_algorithm_display())


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_age() -> timedelta:
    return timedelta(days=_setting("FORECAST_MODEL_MAX_AGE_DAYS", 8))


# --- the series ----------------------------------------------------------------------------------------------------


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Up to the last priced day; difficulty carried forward over missing days (it is a step function);
    hashrate interpolated; hashprice computed (subsidy only)."""
    df = df.sort_index()
    df = df.loc[: df.price_usd.last_valid_index()].copy()
    df["difficulty"] = df.difficulty.ffill()
    df["hashrate_ths"] = df.hashrate_ths.interpolate(limit_direction="forward")
    df = df.dropna(subset=["price_usd", "difficulty"])
    df["hashprice"] = hashprice_usd_per_th_day(
        df.price_usd.to_numpy(), df.difficulty.to_numpy(), fa.subsidy_btc(df.index), 0.0
    )
    return df


@lru_cache(maxsize=1)
def _shipped_frame() -> pd.DataFrame:
    from intelligence.market import DATA

    df = pd.read_csv(DATA, parse_dates=["date"]).set_index("date")
    return _clean(df[["price_usd", "difficulty", "hashrate_ths"]].astype(float))


def network_frame() -> pd.DataFrame:
    """Daily price_usd, difficulty, hashrate_ths and hashprice on a DatetimeIndex: MarketDay when it holds any
    row, else the shipped history. One query."""
    rows = list(MarketDay.objects.order_by("date").values_list("date", "btc_price_usd", "difficulty", "hashrate_ths"))
    if not rows:
        return _shipped_frame()
    df = pd.DataFrame(rows, columns=["date", "price_usd", "difficulty", "hashrate_ths"])
    df["date"] = pd.to_datetime(df["date"])
    df = df.set_index("date").astype(float)
    return _clean(df)


def network_series(target: str) -> pd.Series:
    if target not in COLUMN:
        raise DomainError("unknown_target", f"No network series for target {target!r}.", details={"target": target})
    return network_frame()[COLUMN[target]]


# --- algorithms ----------------------------------------------------------------------------------------------------


def _factory(algorithm: str, params: dict):
    """A fresh, unfitted forecaster for ``algorithm`` with the model's stored ``params``."""
    params = dict(params or {})
    if algorithm == Algorithm.NAIVE:
        return lambda: fa.NaiveForecaster(**params)
    if algorithm == Algorithm.PROPHET:
        return lambda: fa.ProphetForecaster(**params)
    if algorithm == Algorithm.XGBOOST:
        return lambda: fa.XGBoostForecaster(**params)
    if algorithm == Algorithm.DIFFICULTY_EPOCH:
        return lambda: fa.DifficultyEpochForecaster(**params)
    if algorithm == Algorithm.HASHPRICE_COMPOSITE:
        return lambda: fa.HashpriceCompositeForecaster(**params)
    raise DomainError("unknown_algorithm", f"Unknown algorithm {algorithm!r}.", details={"algorithm": algorithm})


def default_params(algorithm: str) -> dict:
    """Light defaults for the product's training (the bench runs the full backtest with the algorithms' own)."""
    if algorithm == Algorithm.PROPHET:
        return {"samples": 200}
    if algorithm == Algorithm.XGBOOST:
        return {"n_estimators": 150}
    if algorithm == Algorithm.DIFFICULTY_EPOCH:
        return {"paths": 300}
    return {}


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metrics_json(m: bt.Metrics | None) -> dict | None:
    if m is None:
        return None
    return {k: _finite(v) for k, v in m.as_dict().items() if k not in ("model", "horizon")}


# --- the registry: train, activate, roll back ----------------------------------------------------------------------


def _check_target_algorithm(target: str, algorithm: str) -> None:
    if target not in ALGORITHMS:
        raise DomainError(
            "unknown_target", f"Models are trained for {', '.join(ALGORITHMS)}; not {target!r}.",
            details={"target": target},
        )  # fmt: skip
    if algorithm not in ALGORITHMS[target]:
        raise DomainError(
            "unknown_algorithm",
            f"{algorithm!r} is not trained for {target}; choose one of {', '.join(ALGORITHMS[target])}.",
            details={"algorithm": algorithm, "target": target},
        )


@transaction.atomic
def model_register(*, target: str, algorithm: str = "", subject: str = NETWORK, params: dict | None = None,
                   horizon_days: int = DEFAULT_HORIZON) -> ForecastModel:  # fmt: skip
    """A new version in the registry, status TRAINING (what a queued training job shows until it ends)."""
    algorithm = algorithm or ALGORITHMS.get(target, ("",))[0]
    _check_target_algorithm(target, algorithm)
    # Lock the (target, subject)'s rows so two requests never pick the same version number.
    latest = (
        ForecastModel.objects.select_for_update().filter(target=target, subject=subject).aggregate(v=Max("version"))
    )["v"] or 0
    return ForecastModel.objects.create(
        target=target, subject=subject, algorithm=algorithm, version=latest + 1, status=Status.TRAINING,
        horizon_days=horizon_days, params=default_params(algorithm) if params is None else params,
    )  # fmt: skip


def backtest_origins(index: pd.DatetimeIndex, *, origins: int, step_days: int, horizon: int) -> list[pd.Timestamp]:
    """The last ``origins`` origins, ``step_days`` apart, each with ``horizon`` days of actuals after it."""
    last = index[-1] - pd.Timedelta(days=horizon)
    return [last - pd.Timedelta(days=step_days * k) for k in reversed(range(origins))]


def model_train(
    *, model: ForecastModel, origins: int | None = None, step_days: int | None = None, horizons=HORIZONS
) -> ForecastModel:
    """Backtest ``model`` walk-forward next to naive (the last 12 weekly origins by default, refitted every 4:
    the full 2019→ backtest is ``bench/forecast_backtest.py``) and store the metrics; CANDIDATE, or FAILED with
    the error. A model that is not TRAINING (a redelivered job) is returned unchanged."""
    model = ForecastModel.objects.get(pk=model.pk)
    if model.status != Status.TRAINING:
        return model
    # Weekly origins: a 14-day step would land every origin at the same place in the 2016-block epoch.
    origins = origins or _setting("FORECAST_BACKTEST_ORIGINS", 12)
    step_days = step_days or _setting("FORECAST_BACKTEST_STEP_DAYS", 7)
    frame = network_frame()
    y = frame[COLUMN[model.target]]
    horizons = tuple(sorted(set(horizons)))
    factories = {model.algorithm: _factory(model.algorithm, model.params)}
    factories.setdefault(bt.BASELINE, _factory(Algorithm.NAIVE, {}))
    status, error, backtest = Status.FAILED, "", {}
    try:
        result = bt.walk_forward(
            y, factories, horizons=horizons,
            origins=backtest_origins(y.index, origins=origins, step_days=step_days, horizon=max(horizons)),
            refit_every=_setting("FORECAST_BACKTEST_REFIT_EVERY", 4), exog=frame, target=model.target,
        )  # fmt: skip
        backtest = {
            "horizons": {
                str(h): {
                    **(_metrics_json(result.metric(model.algorithm, h)) or {}),
                    "naive": _metrics_json(result.metric(bt.BASELINE, h)),
                }
                for h in horizons
            },
            "origins": len(result.origins),
            "first_origin": result.origins[0].date().isoformat(),
            "last_origin": result.origins[-1].date().isoformat(),
            "reference_horizon": REFERENCE_HORIZON if REFERENCE_HORIZON in horizons else horizons[0],
            "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        }
        [me] = [c for c in bt.candidates_from(result, horizon=horizons[0], trained_at=datetime.now(UTC))
                if c.name == model.algorithm]  # fmt: skip
        if me.failed:
            error = "; ".join(result.errors.get(model.algorithm, [])[:3]) or "no forecast at any origin"
        else:
            status = Status.CANDIDATE
    except Exception as exc:  # the registry records a failed training; the caller's job does not crash
        log.warning("forecast training failed", extra={"model_id": model.pk, "error": str(exc)})
        error = f"{type(exc).__name__}: {exc}"
    model.status, model.error, model.backtest = status, error[:2000], backtest
    model.data_until = y.index[-1].date()
    model.trained_at = timezone.now()
    model.save(update_fields=["status", "error", "backtest", "data_until", "trained_at"])
    return model


def _actor(actor) -> tuple[str, str | None]:
    if actor is None:
        return AuditEvent.ActorType.SYSTEM, None
    return AuditEvent.ActorType.USER, actor.pk


def _announce(model: ForecastModel) -> None:
    """The served forecast of this target changes from now on: tell the spine (in the caller's transaction)."""
    outbox.publish(
        "forecast.refreshed", aggregate=f"forecast_model:{model.target}",
        payload={"subject": model.subject or "network", "horizon_days": model.horizon_days,
                 "generated_at": timezone.now().isoformat()},
    )  # fmt: skip


@transaction.atomic(durable=True)
def model_activate(*, model_id: int, actor=None, reason: str = "") -> ForecastModel:
    """Make a trained model the active one of its (target, subject); the previous active one is retired. One
    transaction with the audit event and the outbox event. Activating the active model changes nothing."""
    model = ForecastModel.objects.select_for_update().filter(pk=model_id).first()
    if model is None:
        raise DomainError("not_found", "No such forecast model.", status=404)
    # Lock every model of the pair in primary-key order: two activations of the same pair queue, never deadlock.
    peers = list(
        ForecastModel.objects.select_for_update().filter(target=model.target, subject=model.subject).order_by("pk")
    )
    if model.status == Status.ACTIVE:
        return model
    if model.status not in (Status.CANDIDATE, Status.RETIRED):
        raise DomainError(
            "model_not_ready", f"A {model.get_status_display().lower()} model cannot be activated.",
            status=409, details={"status": model.status},
        )  # fmt: skip
    previous = next((p for p in peers if p.status == Status.ACTIVE), None)
    if previous is not None:
        previous.status = Status.RETIRED
        previous.save(update_fields=["status"])
    model.status, model.activated_at, model.activated_by = Status.ACTIVE, timezone.now(), actor
    model.save(update_fields=["status", "activated_at", "activated_by"])
    actor_type, actor_id = _actor(actor)
    audit_append(
        event_type="forecast_model.activated", actor_type=actor_type, actor_id=actor_id,
        reference=f"forecast_model:{model.pk}",
        payload={"target": model.target, "subject": model.subject, "version": model.version,
                 "algorithm": model.algorithm, "previous": previous.pk if previous else None, "reason": reason},
    )  # fmt: skip
    _announce(model)
    return model


@transaction.atomic(durable=True)
def model_rollback(*, model_id: int, actor=None, reason: str = "") -> ForecastModel | None:
    """Retire the active model ``model_id`` and reactivate the one that was active before it (the latest
    activated among the retired, never one rolled back itself); with none, the target falls back to naive (the
    rule mode). Returns the model now active, or None."""
    model = ForecastModel.objects.select_for_update().filter(pk=model_id).first()
    if model is None:
        raise DomainError("not_found", "No such forecast model.", status=404)
    peers = list(
        ForecastModel.objects.select_for_update().filter(target=model.target, subject=model.subject).order_by("pk")
    )
    if model.status != Status.ACTIVE:
        raise DomainError(
            "model_not_active", "Only the active model can be rolled back.", status=409,
            details={"status": model.status},
        )  # fmt: skip
    # A rolled-back model loses its activation time, so a later roll-back never brings it back (the audit chain
    # keeps when it served).
    model.status, model.activated_at = Status.RETIRED, None
    model.save(update_fields=["status", "activated_at"])
    earlier = [p for p in peers if p.pk != model.pk and p.status == Status.RETIRED and p.activated_at]
    restored = max(earlier, key=lambda p: (p.activated_at, p.pk), default=None)
    if restored is not None:
        restored.status, restored.activated_at, restored.activated_by = Status.ACTIVE, timezone.now(), actor
        restored.save(update_fields=["status", "activated_at", "activated_by"])
    actor_type, actor_id = _actor(actor)
    audit_append(
        event_type="forecast_model.rolled_back", actor_type=actor_type, actor_id=actor_id,
        reference=f"forecast_model:{model.pk}",
        payload={"target": model.target, "subject": model.subject, "version": model.version,
                 "restored": restored.pk if restored else None, "reason": reason},
    )  # fmt: skip
    _announce(model)
    return restored


# --- forecasts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """Which forecaster serves a target now and why (``reason`` is "" when the active model serves)."""

    model: ForecastModel | None
    algorithm: str
    reason: str


def active_model(target: str, subject: str = NETWORK) -> ForecastModel | None:
    return ForecastModel.objects.filter(target=target, subject=subject, status=Status.ACTIVE).first()


def _score(backtest: dict, horizon: int, name: str | None = None):
    row = (backtest or {}).get("horizons", {}).get(str(horizon)) or {}
    if name == bt.BASELINE:
        row = row.get("naive") or {}
    return row.get("mape")


def choose_served(target: str, subject: str = NETWORK, *, latest_day: date) -> Served:
    """The active model, or naive with the reason (none active, failed, stale, lost to naive), by the
    algorithms' own rule (``backtest.choose_active``)."""
    model = active_model(target, subject)
    if model is None:
        return Served(None, Algorithm.NAIVE, "fallback to naive: no active model")
    if model.algorithm == Algorithm.NAIVE:
        return Served(model, Algorithm.NAIVE, "")
    ref = (model.backtest or {}).get("reference_horizon", REFERENCE_HORIZON)
    trained = None
    if model.data_until:
        trained = datetime.combine(model.data_until, datetime.min.time(), tzinfo=UTC)
    now = datetime.combine(latest_day, datetime.min.time(), tzinfo=UTC)
    candidates = [
        bt.Candidate(model.algorithm, _score(model.backtest, ref), trained, failed=bool(model.error)),
        bt.Candidate(bt.BASELINE, _score(model.backtest, ref, bt.BASELINE), None),
    ]
    choice = bt.choose_active(candidates, now=now, max_age=max_age())
    if choice.name == model.algorithm:
        return Served(model, model.algorithm, "")
    why = choice.rejected.get(model.algorithm, choice.reason)
    return Served(model, Algorithm.NAIVE, f"fallback to naive: {_algorithm_name(model)} v{model.version} {why}")


def _points(fc: fa.Forecast) -> list[dict]:
    def r(v):
        return float(f"{float(v):.6g}")

    return [
        {"date": d.date().isoformat(), "yhat": r(m), "lo80": r(l8), "hi80": r(h8), "lo95": r(l9), "hi95": r(h9)}
        for d, m, l8, h8, l9, h9 in zip(fc.index, fc.mean, fc.lower80, fc.upper80, fc.lower95, fc.upper95, strict=True)
    ]


def forecast_make(*, target: str, subject: str = NETWORK, horizon: int = DEFAULT_HORIZON) -> Forecast:
    """Forecast a network target ``horizon`` days past the latest market day with the served model (naive when
    the active one does not qualify or raises now) and store it."""
    if target not in COLUMN:
        raise DomainError("unknown_target", f"Network forecasts are {', '.join(COLUMN)}.", details={"target": target})
    if not 1 <= int(horizon) <= 90:
        raise DomainError("invalid_horizon", "The horizon is 1 to 90 days.", details={"horizon": horizon})
    frame = network_frame()
    y = frame[COLUMN[target]]
    served = choose_served(target, subject, latest_day=y.index[-1].date())
    algorithm, reason = served.algorithm, served.reason
    try:
        params = served.model.params if served.model and algorithm == served.model.algorithm else {}
        fc = _factory(algorithm, params)().fit(y, frame).predict(int(horizon))
    except Exception as exc:
        if served.model is None:  # the plain baseline itself failed: nothing left to fall back to
            raise
        message = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("forecast model failed; naive serves", extra={"model_id": served.model.pk, "error": message})
        ForecastModel.objects.filter(pk=served.model.pk).update(error=message)
        algorithm = Algorithm.NAIVE
        reason = f"fallback to naive: {_algorithm_name(served.model)} v{served.model.version} failed ({message})"
        fc = _factory(Algorithm.NAIVE, {})().fit(y, frame).predict(int(horizon))
    return Forecast.objects.create(
        target=target, subject=subject, model=served.model, algorithm=algorithm, fallback_reason=reason[:200],
        origin=y.index[-1].date(), horizon_days=int(horizon), points=_points(fc),
    )  # fmt: skip


def network_forecast(target: str, *, horizon: int = DEFAULT_HORIZON) -> Forecast:
    """The latest stored network forecast when it is from the latest market day, the served model and at least
    ``horizon`` long and not older than ``FORECAST_NETWORK_REUSE_S``; else a new one. Many users' refreshes
    then share one model fit."""
    latest_day = network_frame().index[-1].date()
    reuse = timezone.now() - timedelta(seconds=_setting("FORECAST_NETWORK_REUSE_S", 3600))
    active = active_model(target)
    fc = (
        Forecast.objects.filter(target=target, subject=NETWORK, generated_at__gte=reuse, origin=latest_day,
                                horizon_days__gte=horizon)
        .order_by("-generated_at", "-pk").first()
    )  # fmt: skip
    if fc is not None and fc.model_id == (active.pk if active else None):
        return fc
    return forecast_make(target=target, horizon=horizon)


@dataclass(frozen=True)
class Fleet:
    hashrate_ths: Decimal
    power_kw: Decimal
    power_cost_usd_per_day: Decimal
    entries: int


def user_fleet(user_id: int) -> Fleet:
    """A user's portfolio: fleet TH/s, kW and daily power cost, each entry at its own power price. One query."""
    from miners.models import PortfolioEntry

    ths = kw = cost = Decimal(0)
    entries = 0
    for e in PortfolioEntry.objects.filter(user_id=user_id).select_related("model"):
        entries += 1
        ths += e.model.hashrate_ths * e.quantity
        entry_kw = e.model.power_w * e.quantity / 1000
        kw += entry_kw
        cost += entry_kw * 24 * e.power_price_usd_per_kwh
    return Fleet(ths, kw, cost, entries)


def _fee_uplift() -> Decimal:
    """(subsidy + fees) / subsidy for the latest day, fees at their last week's median (market.py says why): the
    revenue hashprice (subsidy only) leaves out."""
    from intelligence.market import latest_snapshot, typical_fees_btc_per_block

    snap = latest_snapshot()
    return (snap.block_subsidy_btc + typical_fees_btc_per_block(snap)) / snap.block_subsidy_btc


def revenue_points(hashprice_points: list[dict], fleet: Fleet) -> list[dict]:
    """Net revenue (USD/day) = fleet TH/s × hashprice × fee uplift × (1 − pool fee) − power cost. The map is
    increasing in hashprice, so hashprice's quantiles map to revenue's quantiles (the intervals carry over)."""
    factor = fleet.hashrate_ths * _fee_uplift() * (1 - POOL_FEE)

    def usd(v) -> float:
        return float((Decimal(str(v)) * factor - fleet.power_cost_usd_per_day).quantize(Decimal("0.01")))

    return [{"date": p["date"], **{k: usd(p[k]) for k in ("yhat", "lo80", "hi80", "lo95", "hi95")}}
            for p in hashprice_points]  # fmt: skip


def forecast_revenue_make(*, user_id: int, hashprice: Forecast, fleet: Fleet | None = None) -> Forecast:
    fleet = fleet or user_fleet(user_id)
    return Forecast.objects.create(
        target=ForecastTarget.REVENUE, subject=f"user:{user_id}", model=hashprice.model,
        algorithm=hashprice.algorithm, fallback_reason=hashprice.fallback_reason, origin=hashprice.origin,
        horizon_days=hashprice.horizon_days, points=revenue_points(hashprice.points, fleet),
    )  # fmt: skip


def _metrics_of(model: ForecastModel | None) -> dict | None:
    if model is None or not model.backtest:
        return None
    return {"model_id": model.pk, "version": model.version, "algorithm": model.algorithm,
            "origins": model.backtest.get("origins"), "horizons": model.backtest.get("horizons", {})}  # fmt: skip


def backtest_model(target: str) -> ForecastModel | None:
    """The latest trained network model of ``target`` that has a backtest (whatever its status): what the
    forecasts page shows next to naive when no model serves, and where naive's own figures are read. One query."""
    return (
        ForecastModel.objects.filter(target=target, subject=NETWORK, trained_at__isnull=False)
        .exclude(backtest={})
        .order_by("-trained_at", "-pk")
        .first()
    )


def naive_backtest_ensure(target: str) -> ForecastModel | None:
    """A backtest with naive's figures for a network ``target``: the latest model's (every backtest runs naive
    next to the model), else a naive model registered and backtested now. Naive needs no training and its
    walk-forward takes about a second, so the first forecast of a new install has its metrics; the result is a
    registry row (a CANDIDATE ``naive``), the one place metrics are kept, so this runs once per install. A naive
    backtest that failed on this data (too short a history) is not retried until the data grow."""
    found = backtest_model(target)
    if found is not None:
        return found
    latest = network_frame().index[-1].date()
    if ForecastModel.objects.filter(target=target, subject=NETWORK, algorithm=Algorithm.NAIVE,
                                    data_until__gte=latest).exists():  # fmt: skip
        return None  # tried on this data and failed: the forecast goes out without metrics
    model = model_train(model=model_register(target=target, algorithm=Algorithm.NAIVE, params={}))
    log.info("naive backtest registered", extra={"model_id": model.pk, "target": target, "status": model.status})
    return model if model.backtest else None


def _naive_metrics(fc: Forecast) -> dict | None:
    """When naive serves: naive's own walk-forward figures, from the served model's backtest (the one that lost
    to naive), else the latest one of the target (``naive_backtest_ensure``). The shape is the model case's:
    each horizon holds the served forecaster's figures (here naive's) with naive's again under ``naive``;
    ``model_id`` and ``version`` name the registry row whose backtest they come from."""
    model = fc.model if fc.model is not None and fc.model.backtest else None
    if model is None:
        network_target = fc.model.target if fc.model is not None else fc.target
        if network_target == ForecastTarget.REVENUE:
            network_target = ForecastTarget.HASHPRICE  # revenue is served from the hashprice forecast
        model = naive_backtest_ensure(network_target)
    if model is None:
        return None
    horizons = {}
    for h, row in (model.backtest.get("horizons") or {}).items():
        naive = row.get("naive")
        if naive:
            horizons[h] = {**naive, "naive": naive}
    return {"model_id": model.pk, "version": model.version, "algorithm": Algorithm.NAIVE.value,
            "origins": model.backtest.get("origins"), "horizons": horizons}  # fmt: skip


def served_metrics(fc: Forecast) -> dict | None:
    """The walk-forward metrics of what served ``fc``: the model's backtest, or naive's own when naive served."""
    if fc.algorithm == Algorithm.NAIVE:
        return _naive_metrics(fc)
    return _metrics_of(fc.model)


def _target_json(fc: Forecast) -> dict:
    model = fc.model
    return {
        "target": fc.target,
        "unit": UNIT[fc.target],
        "algorithm": fc.algorithm,
        "model": None if model is None else {"id": model.pk, "version": model.version, "algorithm": model.algorithm},
        "fallback_reason": fc.fallback_reason,
        "origin": fc.origin.isoformat(),
        "horizon_days": fc.horizon_days,
        "forecast_id": fc.pk,
        "points": fc.points,
        "metrics": served_metrics(fc),
    }


def forecast_refresh_user(*, user_id: int, horizon: int = DEFAULT_HORIZON) -> dict:
    """The body of ``forecast:{user_id}``: network forecasts (shared across users; fitted outside any
    transaction) and the user's revenue, announced on the spine in the transaction that stores it."""
    network = {t: network_forecast(t, horizon=horizon) for t in NETWORK_TARGETS}
    fleet = user_fleet(user_id)
    with transaction.atomic():
        revenue = forecast_revenue_make(user_id=user_id, hashprice=network[ForecastTarget.HASHPRICE], fleet=fleet)
        generated = timezone.now()
        outbox.publish(
            "forecast.refreshed", aggregate=f"user:{user_id}",
            payload={"subject": f"user:{user_id}", "horizon_days": horizon, "generated_at": generated.isoformat()},
        )  # fmt: skip
    return {
        "user_id": user_id,
        "generated_at": generated.isoformat(),
        "horizon_days": horizon,
        "price": _target_json(network[ForecastTarget.BTC_PRICE]),
        "difficulty": _target_json(network[ForecastTarget.DIFFICULTY]),
        "hashprice": _target_json(network[ForecastTarget.HASHPRICE]),
        "revenue": {
            **_target_json(revenue),
            "fleet": {"hashrate_ths": str(fleet.hashrate_ths.quantize(Decimal("0.01"))),
                      "power_kw": str(fleet.power_kw.quantize(Decimal("0.001"))),
                      "power_cost_usd_per_day": str(fleet.power_cost_usd_per_day.quantize(Decimal("0.01"))),
                      "entries": fleet.entries, "pool_fee_pct": str(POOL_FEE * 100)},
        },
    }  # fmt: skip


@register_builder("forecast")
def forecast_summary(*, id: int) -> dict:
    """``forecast:{id}`` (the cache helper's key): what ``GET /api/forecast/<id>`` serves."""
    with build_timer("user"):
        return forecast_refresh_user(user_id=int(id))


# --- build timings (``/api/health``'s forecast_latency) ------------------------------------------------------------

TIMINGS_KEPT = 200  # the newest builds whose durations /api/health summarises


@contextmanager
def build_timer(kind: str):
    """Times one forecast build and records it under ``forecast_timings`` (the newest ``TIMINGS_KEPT``): what
    ``/api/health`` reports as forecast_latency. A read-modify-write, not atomic: two builds ending at the same
    instant may keep one sample of the two; a health figure tolerates that, and it needs no table of its own. A
    failed build records nothing (it served no forecast)."""
    started = time.perf_counter()
    yield
    record_build_ms(kind, (time.perf_counter() - started) * 1000)


def record_build_ms(kind: str, ms: float) -> None:
    from django.core.cache import cache

    from hashinsight.core.cache import cache_key

    key = cache_key("forecast_timings")
    try:
        samples = cache.get(key) or []
        samples.append([timezone.now().timestamp(), round(ms, 2), kind])
        cache.set(key, samples[-TIMINGS_KEPT:], 7 * 24 * 3600)
    except Exception:  # a metric must never fail the forecast it measures
        log.warning("forecast timing not recorded", extra={"cache_key": key})


def build_timings() -> list[tuple[float, float, str]]:
    """The recorded builds as (unix time, ms, kind), oldest first; [] when none or the cache is down."""
    from django.core.cache import cache

    from hashinsight.core.cache import cache_key

    try:
        return [tuple(s) for s in cache.get(cache_key("forecast_timings")) or []]
    except Exception:
        return []


# --- revenue per site and per hosting client -----------------------------------------------------------------------
#
# A site's revenue: its active miners' TH/s × hashprice (plus fees, less the pool fee) − their energy at the site's
# power price: the average of its day-ahead PowerPrice over the last ``SITE_PRICE_DAYS`` days it has prices for
# (real-time when it has no day-ahead), else its ``power_price_usd_per_kwh``. A hosting client's: its active
# miners' TH/s × the same hashprice − the hosting fee it pays, its miners' energy at its contract
# ``hosting_rate_usd_per_kwh`` (what the client pays; the site's wholesale price is not the client's to see).
# Both carry the hashprice forecast's 80/95 % intervals (``revenue_points``: revenue is increasing in hashprice).

SITE_PRICE_DAYS = 30
SUBJECT_KINDS = ("site", "customer")


@dataclass(frozen=True)
class SubjectFleet:
    fleet: Fleet
    label: str
    price_usd_per_kwh: Decimal
    price_source: str  # power_prices | site_tariff | hosting_rate


def parse_subject(subject: str) -> tuple[str, int] | None:
    """("site", 3) for "site:3", ("customer", 5) for "customer:5", ("user", 7) for "user:7"; None otherwise."""
    kind, sep, ident = (subject or "").partition(":")
    if not sep or kind not in (*SUBJECT_KINDS, "user") or not ident.isdigit() or len(ident) > 12:
        return None
    return kind, int(ident)


def _site_price(site) -> tuple[Decimal, str]:
    from django.db.models import Avg

    from intelligence.models import PowerMarket, PowerPrice

    for market in (PowerMarket.DAY_AHEAD, PowerMarket.REAL_TIME):
        prices = PowerPrice.objects.filter(site_id=site.pk, market=market)
        last = prices.aggregate(last=Max("interval_start"))["last"]
        if last is None:
            continue
        avg = prices.filter(interval_start__gt=last - timedelta(days=SITE_PRICE_DAYS)).aggregate(p=Avg("usd_per_mwh"))
        return (Decimal(str(avg["p"])) / 1000).quantize(Decimal("0.000001")), "power_prices"
    return Decimal(site.power_price_usd_per_kwh), "site_tariff"


def _miner_fleet(miners, price: Decimal) -> Fleet:
    from django.db.models import Count, Sum

    agg = miners.aggregate(n=Count("pk"), ths=Sum("model__hashrate_ths"), w=Sum("model__power_w"))
    ths = Decimal(str(agg["ths"] or 0))
    kw = Decimal(str(agg["w"] or 0)) / 1000
    return Fleet(ths, kw, kw * 24 * price, agg["n"])


def subject_fleet(subject: str) -> SubjectFleet:
    """The fleet, power price and label of ``site:<id>`` or ``customer:<id>`` (DomainError not_found when the
    site or client does not exist)."""
    from miners.models import Miner, MinerStatus
    from sites.models import Customer, Site

    parsed = parse_subject(subject)
    if parsed is None or parsed[0] not in SUBJECT_KINDS:
        raise DomainError("invalid_subject", "The subject is site:<id> or customer:<id>.",
                          details={"subject": str(subject)[:40]})  # fmt: skip
    kind, pk = parsed
    active = Miner.objects.filter(status=MinerStatus.ACTIVE)
    if kind == "site":
        site = Site.objects.filter(pk=pk).first()
        if site is None:
            raise DomainError("not_found", "No such site.", status=404)
        price, source = _site_price(site)
        return SubjectFleet(_miner_fleet(active.filter(site_id=pk), price), site.name, price, source)
    customer = Customer.objects.filter(pk=pk).first()
    if customer is None:
        raise DomainError("not_found", "No such hosting client.", status=404)
    price = Decimal(customer.hosting_rate_usd_per_kwh)
    return SubjectFleet(_miner_fleet(active.filter(customer_id=pk), price), customer.company, price, "hosting_rate")


def forecast_subject_make(*, subject: str, hashprice: Forecast, fleet: Fleet) -> Forecast:
    return Forecast.objects.create(
        target=ForecastTarget.REVENUE, subject=subject, model=hashprice.model, algorithm=hashprice.algorithm,
        fallback_reason=hashprice.fallback_reason, origin=hashprice.origin, horizon_days=hashprice.horizon_days,
        points=revenue_points(hashprice.points, fleet),
    )  # fmt: skip


def forecast_refresh_subject(*, subject: str, horizon: int = DEFAULT_HORIZON) -> dict:
    """The body of ``revenue_forecast:{subject}``: a site's or hosting client's revenue forecast (stored, announced
    on the spine in the same transaction) next to the hashprice forecast it comes from."""
    sf = subject_fleet(subject)
    hashprice = network_forecast(ForecastTarget.HASHPRICE, horizon=horizon)
    with transaction.atomic():
        revenue = forecast_subject_make(subject=subject, hashprice=hashprice, fleet=sf.fleet)
        generated = timezone.now()
        outbox.publish(
            "forecast.refreshed", aggregate=subject,
            payload={"subject": subject, "horizon_days": horizon, "generated_at": generated.isoformat()},
        )  # fmt: skip
    kind, pk = parse_subject(subject)
    fleet = sf.fleet
    return {
        "subject": subject,
        "kind": kind,
        "id": pk,
        "label": sf.label,
        "generated_at": generated.isoformat(),
        "horizon_days": horizon,
        "hashprice": _target_json(hashprice),
        "revenue": {
            **_target_json(revenue),
            "fleet": {"hashrate_ths": str(fleet.hashrate_ths.quantize(Decimal("0.01"))),
                      "power_kw": str(fleet.power_kw.quantize(Decimal("0.001"))),
                      "power_cost_usd_per_day": str(fleet.power_cost_usd_per_day.quantize(Decimal("0.01"))),
                      "miners": fleet.entries, "pool_fee_pct": str(POOL_FEE * 100),
                      "power_price_usd_per_kwh": str(sf.price_usd_per_kwh.quantize(Decimal("0.00001"))),
                      "power_price_source": sf.price_source},
        },
    }  # fmt: skip


@register_builder("revenue_forecast")
def revenue_forecast_summary(*, subject: str) -> dict:
    """``revenue_forecast:{subject}`` (``site:<id>``, ``customer:<id>``)."""
    with build_timer(subject.partition(":")[0]):
        return forecast_refresh_subject(subject=subject)


def revenue_subjects() -> list[str]:
    """Every site and hosting client with an active miner: what the scheduled refresh rebuilds."""
    from miners.models import Miner, MinerStatus

    placed = Miner.objects.filter(status=MinerStatus.ACTIVE)
    sites = placed.values_list("site_id", flat=True).distinct().order_by("site_id")
    customers = (
        placed.exclude(customer_id=None).values_list("customer_id", flat=True).distinct().order_by("customer_id")
    )
    return [f"site:{s}" for s in sites] + [f"customer:{c}" for c in customers]


# --- selectors -----------------------------------------------------------------------------------------------------


def sees_all_subjects(user) -> bool:
    """Owners and admins read every user's forecast; anyone else only the network's and their own."""
    return role_of(user) in GLOBAL_ROLES


def visible_site_ids(user) -> list[int]:
    """Sites whose revenue ``user`` may read: the sites they operate. A hosting client's scope reaches the sites
    that host its miners (``site_list``), but a site's revenue is the operator's business, never the client's."""
    from sites.selectors import scope_of, site_list

    if scope_of(user).kind not in ("all", "sites"):
        return []
    return list(site_list(user=user).values_list("pk", flat=True))


def visible_customer_ids(user) -> list[int]:
    """Hosting clients whose revenue ``user`` may read: a client its own; a site owner the clients hosted on its
    sites; owners and admins all (``customer_list``)."""
    from sites.selectors import customer_list

    return list(customer_list(user=user).values_list("pk", flat=True))


def may_read_subject(user, subject: str) -> bool:
    """May ``user`` read forecasts of ``subject`` ("" / "network", "user:<id>", "site:<id>", "customer:<id>")?"""
    if subject in (NETWORK, "network") or sees_all_subjects(user):
        return True
    parsed = parse_subject(subject)
    if parsed is None:
        return False
    kind, pk = parsed
    if kind == "user":
        return pk == user.pk
    if kind == "site":
        return pk in visible_site_ids(user)
    return pk in visible_customer_ids(user)


def subject_choices(user) -> list[tuple[str, str]]:
    """The revenue subjects ``user`` may pick, as (subject, label): their own fleet, then their sites, then the
    hosting clients they see (a client: only itself)."""
    from django.utils.translation import gettext

    from sites.models import Customer, Site

    choices = [(f"user:{user.pk}", gettext("My fleet"))]
    site_ids = visible_site_ids(user)
    choices += [(f"site:{pk}", name) for pk, name in Site.objects.filter(pk__in=site_ids).values_list("pk", "name")]
    customer_ids = visible_customer_ids(user)
    choices += [
        (f"customer:{pk}", company)
        for pk, company in Customer.objects.filter(pk__in=customer_ids).values_list("pk", "company")
    ]
    return choices


def readable_subjects(user) -> list[str] | None:
    """Every subject ``user`` may read (None: all of them, for owners and admins)."""
    if sees_all_subjects(user):
        return None
    return [
        NETWORK, f"user:{user.pk}", *(f"site:{pk}" for pk in visible_site_ids(user)),
        *(f"customer:{pk}" for pk in visible_customer_ids(user)),
    ]  # fmt: skip


def forecast_list(*, user, target: str = "", subject: str | None = None, latest: bool = True) -> QuerySet[Forecast]:
    """Forecasts the user may read, newest first: the network's, their own, their sites' (site owners) and the
    hosting clients' they see (a client: its own only); everything for owners and admins. ``latest`` keeps the
    newest per (target, subject). A subject the user may not read is simply absent (an empty list; a detail
    answers 404)."""
    qs = Forecast.objects.select_related("model")
    subjects = readable_subjects(user)
    if subjects is not None:
        qs = qs.filter(subject__in=subjects)
    if target:
        qs = qs.filter(target=target)
    if subject is not None:
        qs = qs.filter(subject="" if subject == "network" else subject)
    if latest:
        newest = Forecast.objects.filter(target=OuterRef("target"), subject=OuterRef("subject")).order_by(
            "-generated_at", "-pk"
        )
        qs = qs.filter(pk=Subquery(newest.values("pk")[:1]))
    return qs.order_by("-generated_at", "-pk")


def model_list(*, user) -> QuerySet[ForecastModel]:
    """The registry: network models for every AI reader; per-subject ones only to owners and admins."""
    qs = ForecastModel.objects.select_related("activated_by")
    if not sees_all_subjects(user):
        qs = qs.filter(subject=NETWORK)
    return qs


def history(target: str, *, days: int = 120) -> list[dict]:
    """The last ``days`` observed values of a network target (for the chart)."""
    s = network_series(target).iloc[-days:]
    return [{"date": d.date().isoformat(), "value": float(f"{v:.6g}")} for d, v in s.items()]


def backtest_rows(model: ForecastModel | None) -> list[dict]:
    """One row per horizon: the model's RMSE, MAE, MAPE, 80/95 % coverage next to naive's."""
    rows = []
    for h, row in sorted(
        ((model.backtest or {}).get("horizons", {}) if model else {}).items(), key=lambda kv: int(kv[0])
    ):
        naive = row.get("naive") or {}
        rows.append({"horizon": int(h), "model": {k: v for k, v in row.items() if k != "naive"}, "naive": naive})
    return rows
