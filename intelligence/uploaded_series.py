"""Training on an uploaded series (``POST /api/v1/training-jobs`` with a CSV): the upload is checked whole (any
bad row is a 400 naming the row and why, and nothing is stored), kept as an ``UploadedSeries``, and a TRAINING
``ForecastModel`` with subject ``upload:<id>`` is registered; its training is queued after the commit and the
request answers 202 at once.

Training is the registry's own algorithms (``forecasting``'s factories: naive, Prophet, XGBoost) with the same
walk-forward backtest next to naive, on the uploaded values. Those forecasters work on daily series, and an upload
may be at any regular step: the k-th point is given the k-th day of a synthetic calendar, so "a day" means "a
step" to them and the horizon is counted in steps. (Prophet's weekly and yearly terms are off by default, so the
relabelling changes nothing it models.)

Why this module registers and trains itself instead of ``forecasting.model_register``/``model_train``: those
accept only the network targets and read the network's series; the change they would need is written in
``/work/notes/assets-shared.md``. Until it lands, the version numbering here is the registry's (the pair's rows
locked, the next version), and the result is stored on the ``ForecastModel`` the same way.

Who sees an upload and its models: its owner, owners and admins (``upload_list``/``upload_models``)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from hashinsight.accounts.roles import GLOBAL_ROLES, role_of
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import audit_append
from hashinsight.events.models import AuditEvent
from intelligence.algorithms import asset_forecast as af
from intelligence.algorithms import backtest as bt
from intelligence.models import ForecastModel, ForecastTarget, UploadedSeries

log = logging.getLogger(__name__)
Algorithm = ForecastModel.Algorithm
Status = ForecastModel.Status

TARGET = ForecastTarget.UPLOAD  # ForecastModel.target of a model trained on an upload
ALGORITHMS = (Algorithm.XGBOOST, Algorithm.PROPHET, Algorithm.NAIVE)
MAX_HORIZON = 365
BACKTEST_ORIGINS = 6
SYNTHETIC_EPOCH = pd.Timestamp("2000-01-01")
TASK_PREFIX = "train-upload-"


def _factory(algorithm: str, params: dict):
    from intelligence import forecasting

    return forecasting._factory(algorithm, params)


def default_params(algorithm: str, horizon: int) -> dict:
    from intelligence import forecasting

    params = dict(forecasting.default_params(algorithm))
    if algorithm == Algorithm.XGBOOST:
        params["max_horizon"] = horizon  # direct multi-horizon up to the asked horizon
    return params


def min_rows(algorithm: str, horizon: int) -> int:
    """History the algorithm needs at the first backtest origin, plus the origins' span and the horizon."""
    need = {Algorithm.XGBOOST: max(60, 3 * horizon), Algorithm.PROPHET: 60, Algorithm.NAIVE: 3}[algorithm]
    return need + horizon + BACKTEST_ORIGINS * max(1, horizon // 2)


# --- the upload ------------------------------------------------------------------------------------------------------


def parse_upload(data: bytes | str, *, interval_minutes: int | None = None) -> af.UploadSeries:
    """The CSV as a series; any bad row is a 400 with the row, the column and the reason."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DomainError("invalid_encoding", "The CSV must be UTF-8 text.", details={"field": "file"}) from None
    try:
        return af.parse_series_csv(data, interval_minutes=interval_minutes)
    except af.SeriesDataError as exc:
        raise DomainError(
            exc.code, str(exc), details={"field": "file", "row": exc.row, "column": exc.column, "reason": exc.message}
        ) from None


def _register(*, series: UploadedSeries, algorithm: str, horizon: int) -> ForecastModel:
    subject = f"upload:{series.pk}"
    latest = (
        ForecastModel.objects.select_for_update().filter(target=TARGET, subject=subject).aggregate(v=Max("version"))
    )["v"] or 0
    return ForecastModel.objects.create(
        target=TARGET, subject=subject, algorithm=algorithm, version=latest + 1, status=Status.TRAINING,
        horizon_days=min(horizon, 32767), params=default_params(algorithm, horizon),
    )  # fmt: skip


def task_id_for(model: ForecastModel) -> str:
    """The Celery task id of a model's training: its JobRun is found from the model alone."""
    return f"{TASK_PREFIX}{model.pk}-{uuid.uuid4().hex[:12]}"


@transaction.atomic(durable=True)
def series_upload(
    *,
    owner,
    data: bytes | str,
    name: str,
    unit: str = "",
    algorithm: str = Algorithm.XGBOOST,
    horizon: int = 24,
    interval_minutes: int | None = None,
) -> tuple[UploadedSeries, ForecastModel, str]:
    """Store the upload and register its TRAINING model; training is queued when this transaction commits.
    Returns the series, the model and the training's task id. A bad file changes nothing."""
    if algorithm not in ALGORITHMS:
        raise DomainError("unknown_algorithm", f"algorithm is one of {', '.join(ALGORITHMS)}.",
                          details={"field": "algorithm"})  # fmt: skip
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise DomainError("invalid_horizon", f"horizon is 1 to {MAX_HORIZON} steps of the series.",
                          details={"field": "horizon"})  # fmt: skip
    raw = data.encode() if isinstance(data, str) else data
    parsed = parse_upload(raw, interval_minutes=interval_minutes)
    need = min_rows(algorithm, horizon)
    if len(parsed.values) < need:
        raise DomainError(
            "too_few_rows", f"{algorithm} with a horizon of {horizon} steps needs at least {need} rows; the file has "
            f"{len(parsed.values)}.", details={"field": "file", "rows": len(parsed.values), "needed": need},
        )  # fmt: skip
    series = UploadedSeries.objects.create(
        owner=owner, name=name[:120], unit=unit[:24], interval_minutes=parsed.interval_minutes,
        points=[[t.isoformat().replace("+00:00", "Z"), float(v)] for t, v in zip(parsed.times, parsed.values,
                                                                                  strict=True)],
        rows=len(parsed.values), sha256=hashlib.sha256(raw).hexdigest(),
    )  # fmt: skip
    model = _register(series=series, algorithm=algorithm, horizon=horizon)
    audit_append(
        event_type="uploaded_series.created", actor_type=AuditEvent.ActorType.USER, actor_id=owner.pk,
        reference=f"uploaded_series:{series.pk}",
        payload={"name": series.name, "rows": series.rows, "interval_minutes": series.interval_minutes,
                 "sha256": series.sha256, "model_id": model.pk, "algorithm": algorithm, "horizon": horizon},
    )  # fmt: skip
    task_id = task_id_for(model)

    def queue():
        from intelligence.forecast_tasks import train_upload

        train_upload.apply_async(kwargs={"model_id": model.pk, "trigger": "manual"}, task_id=task_id)

    transaction.on_commit(queue)
    return series, model, task_id


# --- training --------------------------------------------------------------------------------------------------------


def _steps_as_days(series: UploadedSeries) -> pd.Series:
    values = np.array([p[1] for p in series.points], dtype=float)
    return pd.Series(values, index=pd.date_range(SYNTHETIC_EPOCH, periods=len(values), freq="D"))


def _finite(v):
    return None if v is None or not np.isfinite(v) else round(float(v), 6)


def upload_train(*, model_id: int, progress=None) -> ForecastModel:
    """Backtest the model walk-forward next to naive on its upload (``BACKTEST_ORIGINS`` origins, half a horizon
    apart, each refitted), store the metrics, CANDIDATE or FAILED with the error. A model no longer TRAINING (a
    redelivered job) is returned unchanged. ``progress(done, total)`` is called after each origin."""
    model = ForecastModel.objects.get(pk=model_id)
    if model.status != Status.TRAINING:
        return model
    series = UploadedSeries.objects.get(pk=int(model.subject.split(":", 1)[1]))
    y = _steps_as_days(series)
    horizon = int(model.params.get("max_horizon") or model.horizon_days)
    horizons = tuple(sorted({1, max(1, horizon // 2), horizon}))
    step = max(1, horizon // 2)
    last = len(y) - 1 - horizon
    origins = [y.index[last - step * k] for k in reversed(range(BACKTEST_ORIGINS)) if last - step * k >= 2]
    factories = {model.algorithm: _factory(model.algorithm, model.params)}
    factories.setdefault(bt.BASELINE, _factory(Algorithm.NAIVE, {}))
    predictions, errors, seconds = [], {}, {}
    status, error, backtest = Status.FAILED, "", {}
    try:
        for k, origin in enumerate(origins, start=1):
            result = bt.walk_forward(y, factories, horizons=horizons, origins=[origin], target=series.name)
            predictions.append(result.predictions)
            for name, errs in result.errors.items():
                errors.setdefault(name, []).extend(errs)
            for name, s in result.seconds.items():
                seconds[name] = seconds.get(name, 0.0) + s
            if progress:
                progress(k, len(origins))
        frame = pd.concat(predictions) if predictions else pd.DataFrame()

        def metrics(name, h):
            part = frame[(frame.model == name) & (frame.horizon == h)] if len(frame) else frame
            if not len(part):
                return None
            m = bt.error_metrics(part.actual, part["mean"], part.lower80, part.upper80, part.lower95, part.upper95)
            return {k: _finite(v) if k != "n" else v for k, v in m.items()}

        backtest = {
            "horizons": {
                str(h): {**(metrics(model.algorithm, h) or {}), "naive": metrics(bt.BASELINE, h)} for h in horizons
            },
            "origins": len(origins),
            "unit": "steps",
            "interval_minutes": series.interval_minutes,
            "reference_horizon": horizon,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
        }
        mine = metrics(model.algorithm, horizon)
        if mine is None or not mine.get("n"):
            error = "; ".join(errors.get(model.algorithm, [])[:3]) or "no forecast at any origin"
        else:
            status = Status.CANDIDATE
    except Exception as exc:  # the registry records a failed training; the job does not crash
        log.warning("upload training failed", extra={"model_id": model.pk, "error": str(exc)})
        error = f"{type(exc).__name__}: {exc}"
    model.status, model.error, model.backtest = status, error[:2000], backtest
    model.data_until = datetime.fromisoformat(series.points[-1][0].replace("Z", "+00:00")).astimezone(UTC).date()
    model.trained_at = timezone.now()
    model.save(update_fields=["status", "error", "backtest", "data_until", "trained_at"])
    return model


# --- reads -----------------------------------------------------------------------------------------------------------


def upload_list(*, user) -> QuerySet[UploadedSeries]:
    qs = UploadedSeries.objects.select_related("owner")
    return qs if role_of(user) in GLOBAL_ROLES else qs.filter(owner=user)


def training_models(*, user) -> QuerySet[ForecastModel]:
    """The models whose training ``user`` may follow: owners and admins every model; anyone else the models of
    their own uploads."""
    qs = ForecastModel.objects.all()
    if role_of(user) in GLOBAL_ROLES:
        return qs
    mine = [f"upload:{pk}" for pk in UploadedSeries.objects.filter(owner=user).values_list("pk", flat=True)]
    return qs.filter(Q(target=TARGET) & Q(subject__in=mine))
