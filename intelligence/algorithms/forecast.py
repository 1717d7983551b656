"""Forecasters for daily market series (BTC price, difficulty, hashprice): one interface, a naive baseline that
every model is compared with, Prophet, XGBoost and a difficulty model that knows the 2016-block epochs.

The interface: ``fit(y, exog=None)`` learns from a dated daily series (a ``pd.Series`` on a ``DatetimeIndex``;
``exog`` holds other columns known up to the same day, e.g. network hashrate) and ``predict(h)`` returns a
:class:`Forecast` for the ``h`` days after the last observation with 80 % and 95 % intervals. ``update(y, exog)``
gives a fitted model newer data without re-learning its parameters (the backtest refits only every k origins).

Positive series are modelled in logs (relative changes), so a 5 % move means the same at $300 and at $100,000.
No Django here: plain pandas/numpy in and out, so the backtest, the bench and the Django jobs share this code.
"""

from __future__ import annotations

import itertools
import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intelligence.algorithms.hashprice import block_subsidy_btc_on

Z80 = 1.2815515655446004  # standard normal quantile 0.90: an 80 % central interval is ±Z80 σ
Z95 = 1.959963984540054
QUANTILES = (0.025, 0.10, 0.90, 0.975)  # lower95, lower80, upper80, upper95

BLOCKS_PER_EPOCH = 2016
EPOCH_TARGET_DAYS = 14.0  # 2016 blocks × 600 s
MAX_ADJUSTMENT = 4.0  # the protocol clamps a retarget to ×4 / ÷4
log = logging.getLogger(__name__)


class ForecastError(ValueError):
    """Input a forecaster cannot use (too short, not dated, non-finite, bad horizon); the message says which."""


@dataclass(frozen=True)
class Forecast:
    """``h`` daily predictions after ``origin`` (the last observed day): point and 80 %/95 % bounds."""

    model: str
    origin: pd.Timestamp
    index: pd.DatetimeIndex
    mean: np.ndarray
    lower80: np.ndarray
    upper80: np.ndarray
    lower95: np.ndarray
    upper95: np.ndarray

    @property
    def horizon(self) -> int:
        return len(self.index)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "mean": self.mean,
                "lower80": self.lower80,
                "upper80": self.upper80,
                "lower95": self.lower95,
                "upper95": self.upper95,
            },
            index=self.index,
        )

    def as_dict(self) -> dict:
        """JSON-ready: dates as ISO strings, floats rounded to 6 significant digits."""

        def r(a):
            return [float(f"{v:.6g}") for v in a]

        return {
            "model": self.model,
            "origin": self.origin.date().isoformat(),
            "dates": [d.date().isoformat() for d in self.index],
            "mean": r(self.mean),
            "lower80": r(self.lower80),
            "upper80": r(self.upper80),
            "lower95": r(self.lower95),
            "upper95": r(self.upper95),
        }


def _forecast(name: str, origin: pd.Timestamp, center, q) -> Forecast:
    """Build a Forecast from a center and quantile arrays (rows: QUANTILES order), fixing crossings so that
    lower95 ≤ lower80 ≤ mean ≤ upper80 ≤ upper95 always holds."""
    center = np.asarray(center, dtype=float)
    lo95, lo80, hi80, hi95 = (np.asarray(a, dtype=float) for a in q)
    lo80 = np.minimum(lo80, center)
    hi80 = np.maximum(hi80, center)
    lo95 = np.minimum(lo95, lo80)
    hi95 = np.maximum(hi95, hi80)
    index = pd.date_range(origin + pd.Timedelta(days=1), periods=len(center), freq="D")
    return Forecast(name, origin, index, center, lo80, hi80, lo95, hi95)


def _widening(center: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Make each bound's distance from the center non-decreasing with the horizon (uncertainty never shrinks
    further ahead; sampled or empirical quantiles can wobble)."""
    q = np.array(q, dtype=float)
    for row in range(q.shape[0]):
        dist = np.abs(q[row] - center)
        dist = np.maximum.accumulate(dist)
        q[row] = center - dist if row < 2 else center + dist
    return q


def prepare_series(y, *, name: str = "series", min_points: int = 2, max_gap_days: int = 7) -> pd.Series:
    """A clean daily float series: sorted, one value per day (the last wins), interior gaps up to
    ``max_gap_days`` filled by linear interpolation in time, leading/trailing missing days dropped.
    Raises ForecastError for anything else (no DatetimeIndex, infinite values, longer gaps, too short)."""
    if not isinstance(y, pd.Series):
        raise ForecastError(f"{name}: expected a pandas Series on a DatetimeIndex")
    if not isinstance(y.index, pd.DatetimeIndex):
        raise ForecastError(f"{name}: the index must be dates (DatetimeIndex)")
    s = pd.to_numeric(y, errors="coerce").astype(float)
    if np.isinf(s.to_numpy()).any():
        raise ForecastError(f"{name}: contains infinite values")
    if s.index.tz is not None:  # days are UTC days
        s.index = s.index.tz_convert("UTC").tz_localize(None)
    s = s[~s.index.duplicated(keep="last")].sort_index()
    s.index = s.index.normalize()
    s = s[~s.index.duplicated(keep="last")]
    s = s.loc[s.first_valid_index() : s.last_valid_index()] if s.notna().any() else s.iloc[:0]
    if len(s) < min_points:
        raise ForecastError(f"{name}: needs at least {min_points} days of data, got {len(s)}")
    s = s.asfreq("D")
    missing = s.isna().to_numpy()
    if missing.any():
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, missing.astype(int), 0])))[::2]
        if runs.max() > max_gap_days:
            raise ForecastError(f"{name}: a gap of {runs.max()} days (at most {max_gap_days} are filled)")
        s = s.interpolate(method="time")
    return s


def _check_horizon(h) -> int:
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
        raise ForecastError(f"horizon must be a positive integer, got {h!r}")
    return int(h)


class Forecaster(ABC):
    """Fit on a dated daily series, predict ``h`` days with 80 %/95 % intervals."""

    name: str = "forecaster"
    min_history: int = 30

    def __init__(self) -> None:
        self.y: pd.Series | None = None
        self.log_scale = False

    # --- shared plumbing ---------------------------------------------------------------------------------------

    def _set_data(self, y, exog=None) -> pd.Series:
        y = prepare_series(y, name=self.name, min_points=self.min_history)
        self.y = y
        self.exog = None if exog is None else exog.loc[: y.index[-1]]
        return y

    def _to_model(self, values):
        return np.log(values) if self.log_scale else np.asarray(values, dtype=float)

    def _from_model(self, values):
        return np.exp(values) if self.log_scale else np.asarray(values, dtype=float)

    @property
    def origin(self) -> pd.Timestamp:
        if self.y is None:
            raise ForecastError(f"{self.name}: predict before fit")
        return self.y.index[-1]

    # --- the interface -----------------------------------------------------------------------------------------

    @abstractmethod
    def fit(self, y: pd.Series, exog: pd.DataFrame | None = None) -> Forecaster: ...

    def update(self, y: pd.Series, exog: pd.DataFrame | None = None) -> Forecaster:
        """Newer data, same parameters. Models whose fit is cheap and parameter-free simply refit."""
        return self.fit(y, exog)

    @abstractmethod
    def predict(self, horizon: int) -> Forecast: ...


# --- naive ---------------------------------------------------------------------------------------------------------


class NaiveForecaster(Forecaster):
    """The baseline. ``kind``: "last" (tomorrow = today: right for a random walk such as the BTC price, and for
    difficulty it is the current epoch's value), "drift" (last value plus the mean daily change of the window),
    "seasonal" (the value one ``period`` ago).

    Intervals are empirical: the quantiles of the h-day-ahead errors this same rule made over the last
    ``window`` days of the history (for "last": of y[t+h]/y[t]), so they widen with h as the data say, not as an
    assumed √h. Where fewer than 30 such errors exist, the 1-day spread is scaled by √h.
    """

    min_history = 3

    def __init__(self, kind: str = "last", *, period: int = 7, window: int = 730):
        super().__init__()
        if kind not in ("last", "drift", "seasonal"):
            raise ForecastError(f"naive kind must be last, drift or seasonal, got {kind!r}")
        self.kind, self.period, self.window = kind, period, window
        self.name = "naive" if kind == "last" else f"naive_{kind}"
        if kind == "seasonal":
            self.min_history = period + 2

    def fit(self, y, exog=None):
        y = self._set_data(y, exog)
        self.log_scale = bool((y > 0).all())
        self._x = self._to_model(y.to_numpy()[-(self.window + 60) :])
        d = np.diff(self._x[-self.window :])
        self._drift = float(d.mean()) if self.kind == "drift" and len(d) else 0.0
        return self

    def _point(self, x: np.ndarray, t: int, h: int) -> float:
        """What this rule predicts for x[t + h] standing at x[t] (t indexes x)."""
        if self.kind == "seasonal":
            p = self.period
            return x[t - p + 1 + (h - 1) % p]
        return x[t] + self._drift * h

    def predict(self, horizon):
        h_max = _check_horizon(horizon)
        x = self._x
        n = len(x)
        t_last = n - 1
        center = np.array([self._point(x, t_last, h) for h in range(1, h_max + 1)])
        q = np.empty((4, h_max))
        first = self.period - 1 if self.kind == "seasonal" else 0
        sigma1 = None
        for h in range(1, h_max + 1):
            ts = np.arange(max(first, n - 1 - h - self.window), n - h)
            errors = x[ts + h] - np.array([self._point(x, t, h) for t in ts]) if len(ts) else np.array([])
            if len(errors) >= 30:
                q[:, h - 1] = center[h - 1] + np.quantile(errors, QUANTILES)
                if h == 1:
                    sigma1 = float(np.std(errors))
            else:
                if sigma1 is None:
                    diffs = np.diff(x)
                    sigma1 = float(np.std(diffs)) if len(diffs) > 1 else 0.0
                s = sigma1 * math.sqrt(h)
                q[:, h - 1] = center[h - 1] + np.array([-Z95, -Z80, Z80, Z95]) * s
        q = _widening(center, q)
        return _forecast(self.name, self.origin, self._from_model(center), self._from_model(q))


# --- Prophet -------------------------------------------------------------------------------------------------------


class ProphetForecaster(Forecaster):
    """Prophet (piecewise-linear trend with changepoints, optional yearly/weekly seasonality) on the last
    ``window`` days, in logs for positive series. Both interval levels come from one set of Prophet's predictive
    samples (trend changepoints simulated forward plus observation noise): their 2.5/10/90/97.5 % quantiles.
    ``iterations`` caps the optimizer (tests); ``samples`` is the number of sampled paths.

    ``anchor`` (default on): the forecast is Prophet's predicted *change* from the origin added to the last
    observed value, not Prophet's own level. Prophet's smooth trend sits away from the last observation of a
    random-walk-like series, and that offset alone costs more than the whole naive error; with the anchor,
    Prophet contributes what it may know (trend, seasonality) on top of naive.

    ``update`` keeps the fitted parameters and moves the origin: the anchored forecast for the new origin is the
    model's change over those later days added to the newest observation (Prophet itself cannot condition on new
    points without refitting)."""

    name = "prophet"
    min_history = 60

    def __init__(
        self,
        *,
        window: int = 730,
        samples: int = 300,
        iterations: int | None = None,
        yearly: bool = False,
        weekly: bool = False,
        changepoint_prior_scale: float = 0.05,
        anchor: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.anchor = anchor
        self.window, self.samples, self.iterations = window, samples, iterations
        self.yearly, self.weekly, self.cps, self.seed = yearly, weekly, changepoint_prior_scale, seed
        self._model = None

    def fit(self, y, exog=None):
        for name in ("cmdstanpy", "prophet"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from prophet import Prophet  # imported here: it takes a second and most callers never need it

        y = self._set_data(y, exog)
        self.log_scale = bool((y > 0).all())
        y = y.iloc[-self.window :]
        df = pd.DataFrame({"ds": y.index, "y": self._to_model(y.to_numpy())})
        model = Prophet(
            yearly_seasonality=self.yearly,
            weekly_seasonality=self.weekly,
            daily_seasonality=False,
            changepoint_prior_scale=self.cps,
            uncertainty_samples=self.samples,
        )
        kwargs = {"iter": self.iterations} if self.iterations else {}
        model.fit(df, **kwargs)
        self._model = model
        self._fit_end = y.index[-1]
        return self

    def update(self, y, exog=None):
        if self._model is None:
            return self.fit(y, exog)
        self._set_data(y, exog)
        return self

    def predict(self, horizon):
        h = _check_horizon(horizon)
        if self._model is None:
            raise ForecastError("prophet: predict before fit")
        gap = (self.origin - self._fit_end).days
        days = pd.date_range(self._fit_end + pd.Timedelta(days=1), periods=gap + h, freq="D")
        future = pd.DataFrame({"ds": days})
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            samples = self._model.predictive_samples(future)["yhat"][gap:]
        finally:
            np.random.set_state(state)
        if self.anchor:
            samples = samples + (self._to_model(self.y.iloc[-1]) - self._level_at(self.origin))
        center = np.median(samples, axis=1)
        q = np.quantile(samples, QUANTILES, axis=1)
        q = _widening(center, q)
        return _forecast(self.name, self.origin, self._from_model(center), self._from_model(q))

    def _level_at(self, day: pd.Timestamp) -> float:
        """Prophet's own expected value (trend + seasonality, no sampling) on ``day``."""
        model = self._model
        kept, model.uncertainty_samples = model.uncertainty_samples, 0
        try:
            return float(model.predict(pd.DataFrame({"ds": [day]}))["yhat"].iloc[0])
        finally:
            model.uncertainty_samples = kept


# --- XGBoost -------------------------------------------------------------------------------------------------------


def lag_features(x: np.ndarray, lags, rolls) -> np.ndarray:
    """Features at every day t from x[..t] only (x in model units, logs for positive series): the change over
    each lag, the spread of daily changes over each rolling window, and the distance from each rolling mean.
    Rows before enough history are NaN (XGBoost handles them as missing)."""
    s = pd.Series(x)
    d = s.diff()
    cols = [s - s.shift(k) for k in lags]
    cols += [d.rolling(w, min_periods=max(3, w // 2)).std() for w in rolls]
    cols += [s - s.rolling(w, min_periods=max(3, w // 2)).mean() for w in rolls]
    return np.column_stack([c.to_numpy() for c in cols])


class XGBoostForecaster(Forecaster):
    """Gradient-boosted trees on lag and rolling features, **direct multi-horizon with the horizon as a feature**:
    one model learns y[t+h] − y[t] (in logs) from the features at t plus h, on rows (t, h) for h = 1..max_horizon.
    Why not one model per step: one model sees 30× the rows, shares what is common to all horizons, cannot give
    day 8 a forecast unrelated to day 7, and is one artefact for the registry instead of thirty.

    Intervals: **residual quantiles** (split-conformal), not quantile objectives. The last ``calibration``
    share of origins is held out, a model trained on the earlier rows (targets ending before the hold-out)
    predicts them, and the 2.5/10/90/97.5 % quantiles of its errors per horizon become the bands; then the model
    is refitted on all rows. Quantile objectives fitted in-sample by trees come out too narrow (the trees fit
    the training noise); held-out errors are what the backtest will see.
    """

    name = "xgboost"

    def __init__(
        self,
        *,
        max_horizon: int = 30,
        window: int = 1095,
        lags=(1, 2, 3, 5, 7, 14, 21, 30),
        rolls=(7, 30, 90),
        n_estimators: int = 200,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        calibration: float = 0.25,
        n_jobs: int = 1,  # one thread: on a shared 2-core box OpenMP spinning made 2 threads 10× slower
        seed: int = 0,
    ):
        super().__init__()
        self.max_horizon, self.window, self.lags, self.rolls = max_horizon, window, tuple(lags), tuple(rolls)
        self.params = {
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "min_child_weight": 5,
            "nthread": n_jobs,
            "seed": seed,
            "tree_method": "hist",
        }
        self.calibration = calibration
        self.min_history = max(60, 3 * max_horizon)
        self._booster = None

    def _rows(self, feats: np.ndarray, x: np.ndarray, origins: np.ndarray, t_end: int):
        """(X, target, h) for every origin t and h with t + h ≤ t_end."""
        xs, ys, hs = [], [], []
        for h in range(1, self.max_horizon + 1):
            ts = origins[origins + h <= t_end]
            if not len(ts):
                continue
            xs.append(np.column_stack([feats[ts], np.full(len(ts), h)]))
            ys.append(x[ts + h] - x[ts])
            hs.append(np.full(len(ts), h))
        return np.vstack(xs), np.concatenate(ys), np.concatenate(hs)

    def _train(self, X: np.ndarray, target: np.ndarray):
        import xgboost as xgb  # the native API: the scikit-learn wrapper would pull in scikit-learn

        params = {k: v for k, v in self.params.items() if k != "n_estimators"}
        params["objective"] = "reg:squarederror"
        return xgb.train(params, xgb.DMatrix(X, label=target), num_boost_round=self.params["n_estimators"])

    @staticmethod
    def _predict(booster, X: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        return booster.predict(xgb.DMatrix(X)).astype(float)

    def fit(self, y, exog=None):
        y = self._set_data(y, exog)
        self.log_scale = bool((y > 0).all())
        x = self._to_model(y.to_numpy()[-(self.window + max(self.rolls) + max(self.lags)) :])
        feats = lag_features(x, self.lags, self.rolls)
        n = len(x)
        first = max(1, n - self.window)
        origins = np.arange(first, n - 1)
        cal_start = int(origins[0] + (1 - self.calibration) * len(origins))
        train_o, cal_o = origins[origins < cal_start], origins[origins >= cal_start]
        X, t, _ = self._rows(feats, x, train_o, cal_start)  # targets end before the hold-out starts
        if len(X) < 50 or not len(cal_o):
            raise ForecastError(f"xgboost: needs more history (got {len(y)} days)")
        model = self._train(X, t)
        Xc, tc, hc = self._rows(feats, x, cal_o, n - 1)
        errors = tc - self._predict(model, Xc)
        q = np.zeros((4, self.max_horizon))
        for h in range(1, self.max_horizon + 1):
            e = errors[hc == h]
            if len(e) >= 10:
                q[:, h - 1] = np.quantile(e, QUANTILES)
            else:  # too few held-out errors this far ahead: scale the last reliable ones by √h
                q[:, h - 1] = q[:, h - 2] * math.sqrt(h / (h - 1)) if h > 1 else 0.0
        self._error_q = q
        X, t, _ = self._rows(feats, x, origins, n - 1)
        self._booster = self._train(X, t)
        self._x = x
        return self

    def update(self, y, exog=None):
        if self._booster is None:
            return self.fit(y, exog)
        y = self._set_data(y, exog)
        x = self._to_model(y.to_numpy()[-(max(self.rolls) + max(self.lags) + 5) :])
        if self.log_scale and not (y > 0).all():
            return self.fit(y, exog)
        self._x = x
        return self

    def predict(self, horizon):
        h_max = _check_horizon(horizon)
        if self._booster is None:
            raise ForecastError("xgboost: predict before fit")
        if h_max > self.max_horizon:
            raise ForecastError(f"xgboost: trained up to {self.max_horizon} days, asked for {h_max}")
        x = self._x
        f = lag_features(x, self.lags, self.rolls)[-1]
        hs = np.arange(1, h_max + 1)
        X = np.column_stack([np.tile(f, (h_max, 1)), hs])
        center = x[-1] + self._predict(self._booster, X)
        q = center + self._error_q[:, :h_max]
        q = _widening(center, q)
        return _forecast(self.name, self.origin, self._from_model(center), self._from_model(q))


# --- difficulty: the epoch model -----------------------------------------------------------------------------------


def blocks_per_day(hashrate_ths, difficulty):
    """Blocks a day that network hashrate (TH/s) finds at a difficulty: hashes per day / hashes per block."""
    return np.asarray(hashrate_ths, dtype=float) * 1e12 * 86400 / (np.asarray(difficulty, dtype=float) * 2**32)


@dataclass(frozen=True)
class Epoch:
    """Where the current difficulty epoch stands at the last observed day."""

    difficulty: float
    start_day: float  # days since the series' first day (fractional: within the retarget day)
    elapsed_days: float  # to the end of the last observed day
    blocks: float  # blocks found in it so far (estimated from hashrate and difficulty)


def current_epoch(difficulty: np.ndarray, hashrate_ths: np.ndarray) -> Epoch:
    """Find the last retarget in a daily difficulty series and count the epoch's blocks so far.

    A retarget shows as a change of the daily value. The retarget day itself carries a blend of old and new
    difficulty (blockchain.com's daily value), read as time-weighted: the share of that day before the retarget
    is (new − blend) / (new − old)."""
    d = np.asarray(difficulty, dtype=float)
    n = len(d)
    changes = np.flatnonzero(np.diff(d) != 0) + 1
    if not len(changes):
        raise ForecastError("difficulty: no retarget in the history, cannot place the epoch")
    last = changes[-1]
    first = last - 1 if len(changes) > 1 and changes[-2] == last - 1 else last
    old, new = d[first - 1], d[-1]
    if first < last:  # a blend day followed by the new value
        share_before = (new - d[first]) / (new - old) if new != old else 0.5
        share_before = min(max(share_before, 0.0), 1.0)
    else:
        share_before = 0.0
    start = first + share_before
    b = blocks_per_day(hashrate_ths, d)
    blocks = b[first] * (1 - share_before) + b[first + 1 :].sum()
    return Epoch(difficulty=new, start_day=start, elapsed_days=n - start, blocks=float(blocks))


def retarget_history(difficulty: np.ndarray) -> np.ndarray:
    """The settled difficulty of each epoch in the series (one value per epoch, blend days skipped)."""
    d = np.asarray(difficulty, dtype=float)
    change = np.r_[True, np.diff(d) != 0]
    groups = np.cumsum(change)
    counts = np.bincount(groups)[1:]
    values = d[change]
    return values[counts >= 2]


def block_count_spread(difficulty: np.ndarray, hashrate_ths: np.ndarray, *, epochs: int) -> float:
    """How far the estimated block count of a whole epoch strays from 2016: the std of log(count / 2016) over
    the last ``epochs`` complete epochs (retarget days split by their blend share). 0.03 when too few."""
    d = np.asarray(difficulty, dtype=float)
    b = blocks_per_day(hashrate_ths, d)
    changes = np.flatnonzero(np.diff(d) != 0) + 1
    starts = [c for i, c in enumerate(changes) if i == 0 or changes[i - 1] != c - 1]
    counts = [b[s:e].sum() for s, e in itertools.pairwise(starts)][-epochs:]
    if len(counts) < 4:
        return 0.03
    return float(np.std(np.log(np.array(counts) / BLOCKS_PER_EPOCH), ddof=1))


def simulate_difficulty(
    *,
    epoch: Epoch,
    hashrate0_ths: np.ndarray,
    growth_per_day: np.ndarray,
    horizon: int,
) -> np.ndarray:
    """Daily difficulty paths (paths × horizon) from the epoch rules: blocks arrive at hashrate/difficulty; when
    an epoch reaches 2016 blocks the difficulty is multiplied by 14 days / the epoch's duration (clamped ×4/÷4)
    and the daily value on that day is the time-weighted blend. Hashrate grows as exp(g·t) on each path."""
    paths = len(hashrate0_ths)
    d = np.full(paths, epoch.difficulty)
    blocks = np.full(paths, epoch.blocks)
    elapsed = np.full(paths, epoch.elapsed_days)
    out = np.empty((paths, horizon))
    for k in range(horizon):
        h_ths = hashrate0_ths * np.exp(growth_per_day * (k + 0.5))
        rate = blocks_per_day(h_ths, d)
        need = BLOCKS_PER_EPOCH - blocks
        done = rate >= need
        share = np.where(done, np.clip(need / np.maximum(rate, 1e-9), 0.0, 1.0), 1.0)
        duration = elapsed + share
        factor = np.clip(EPOCH_TARGET_DAYS / np.maximum(duration, 1e-9), 1 / MAX_ADJUSTMENT, MAX_ADJUSTMENT)
        new_d = np.where(done, d * factor, d)
        out[:, k] = share * d + (1 - share) * new_d
        blocks = np.where(done, blocks_per_day(h_ths, new_d) * (1 - share), blocks + rate)
        elapsed = np.where(done, 1 - share, elapsed + 1)
        d = new_d
    return out


class DifficultyEpochForecaster(Forecaster):
    """Difficulty as what it is: a step function that changes every 2016 blocks. From the history it places the
    current epoch (its start, blocks so far) and estimates network hashrate now and its growth (a straight line
    through log hashrate over the last ``trend_days``); it then plays the retarget rule forward, so the forecast
    is the next adjustments (when, and by how much), not a smooth curve.

    Intervals: ``paths`` simulations with the growth rate drawn from the spread of past per-epoch growth
    (std of log retarget ratios over the last ``spread_epochs`` epochs, per day) and the starting hashrate from
    the regression's error; quantiles per day. Needs ``exog["hashrate_ths"]`` (network hashrate estimate)."""

    name = "epoch"
    min_history = 60

    def __init__(self, *, trend_days: int = 42, spread_epochs: int = 13, paths: int = 400, seed: int = 0):
        super().__init__()
        self.trend_days, self.spread_epochs, self.paths, self.seed = trend_days, spread_epochs, paths, seed

    def fit(self, y, exog=None):
        y = self._set_data(y, exog)
        if exog is None or "hashrate_ths" not in exog:
            raise ForecastError("epoch: needs exog['hashrate_ths'] (network hashrate) next to the difficulty")
        hr = prepare_series(exog["hashrate_ths"].loc[: y.index[-1]], name="hashrate_ths", min_points=self.min_history)
        hr = hr.reindex(y.index).interpolate(limit_direction="both")
        if not (y > 0).all() or not (hr > 0).all():
            raise ForecastError("epoch: difficulty and hashrate must be positive")
        self.log_scale = True
        d, h = y.to_numpy(), hr.to_numpy()
        self._epoch = current_epoch(d, h)
        tail = np.log(h[-self.trend_days :])
        t = np.arange(len(tail)) - (len(tail) - 1)  # 0 at the last day
        slope, level = np.polyfit(t, tail, 1)
        resid = tail - (level + slope * t)
        self._h0, self._g = float(np.exp(level)), float(slope)
        self._level_sd = float(
            resid.std(ddof=2) * math.sqrt(1 / len(tail) + (t.mean() ** 2) / ((t - t.mean()) ** 2).sum())
        )
        settled = retarget_history(d)[-(self.spread_epochs + 1) :]
        ratios = np.diff(np.log(settled))
        self._g_sd = float(ratios.std(ddof=1) / EPOCH_TARGET_DAYS) if len(ratios) >= 3 else abs(self._g) + 1e-3
        self._blocks_sd = block_count_spread(d, h, epochs=self.spread_epochs)
        return self

    def predict(self, horizon):
        h = _check_horizon(horizon)
        rng = np.random.default_rng(self.seed)
        point = simulate_difficulty(
            epoch=self._epoch, hashrate0_ths=np.array([self._h0]), growth_per_day=np.array([self._g]), horizon=h
        )[0]
        h0 = self._h0 * np.exp(rng.normal(0.0, self._level_sd, self.paths))
        g = rng.normal(self._g, self._g_sd, self.paths)
        # the epoch's block count so far is an estimate (from the daily hashrate estimate): its error grows with
        # the share of the epoch already counted
        share = min(1.0, self._epoch.elapsed_days / EPOCH_TARGET_DAYS)
        blocks = self._epoch.blocks * np.exp(rng.normal(0.0, self._blocks_sd * share, self.paths))
        epoch = Epoch(self._epoch.difficulty, self._epoch.start_day, self._epoch.elapsed_days, blocks)
        paths = simulate_difficulty(epoch=epoch, hashrate0_ths=h0, growth_per_day=g, horizon=h)
        lp = np.log(point)
        q = _widening(lp, np.log(np.quantile(paths, QUANTILES, axis=0)))
        return _forecast(self.name, self.origin, point, np.exp(q))


# --- hashprice: price × subsidy / difficulty -----------------------------------------------------------------------


def subsidy_btc(days) -> np.ndarray:
    """Block subsidy (BTC) over each UTC day, from the halving schedule of hashprice.py (time-weighted on a
    halving day). The timing of a halving is known months ahead from the block height, so using it in a backtest
    is not look-ahead in any way that matters at a 30-day horizon."""
    return np.array([float(block_subsidy_btc_on(d.date())) for d in pd.DatetimeIndex(days)])


class HashpriceCompositeForecaster(Forecaster):
    """Hashprice (USD per TH/s per day) is revenue per block × blocks per TH/s, i.e. ∝ price × subsidy /
    difficulty (fees taken as a constant share). So forecast its parts: the price with ``price_model`` (naive by
    default: price is close to a random walk), the difficulty with the epoch model, the subsidy from the halving
    schedule, and recombine: hp[t+h] = hp[t] × P[t+h]/P[t] × D[t]/D[t+h] × S[t+h]/S[t]. The intervals combine the
    two parts' log-spreads as independent (σ² = σ²_price + σ²_difficulty).
    Needs exog columns ``price_usd``, ``difficulty`` and ``hashrate_ths``."""

    name = "composite"
    min_history = 60

    def __init__(self, *, price_model: Forecaster | None = None, difficulty_model: Forecaster | None = None):
        super().__init__()
        self.price_model = price_model or NaiveForecaster()
        self.difficulty_model = difficulty_model or DifficultyEpochForecaster()

    def fit(self, y, exog=None):
        y = self._set_data(y, exog)
        missing = {"price_usd", "difficulty", "hashrate_ths"} - set(exog.columns if exog is not None else ())
        if missing:
            raise ForecastError(f"composite: needs exog columns {sorted(missing)}")
        self.log_scale = True
        ex = exog.loc[: y.index[-1]]
        self.price_model.fit(ex["price_usd"])
        self.difficulty_model.fit(ex["difficulty"], ex)
        return self

    def update(self, y, exog=None):
        return self.fit(y, exog)

    def predict(self, horizon):
        h = _check_horizon(horizon)
        p = self.price_model.predict(h)
        d = self.difficulty_model.predict(h)
        p0 = float(self.price_model.y.iloc[-1])
        d0 = float(self.difficulty_model.y.iloc[-1])
        s = subsidy_btc(p.index) / subsidy_btc([self.origin])[0]
        hp0 = float(self.y.iloc[-1])
        center = np.log(hp0) + np.log(p.mean / p0) - np.log(d.mean / d0) + np.log(s)

        def sigma(f: Forecast, lo, hi, z):
            return (np.log(hi) - np.log(lo)) / (2 * z)

        s80 = np.hypot(sigma(p, p.lower80, p.upper80, Z80), sigma(d, d.lower80, d.upper80, Z80))
        s95 = np.hypot(sigma(p, p.lower95, p.upper95, Z95), sigma(d, d.lower95, d.upper95, Z95))
        q = np.vstack([center - Z95 * s95, center - Z80 * s80, center + Z80 * s80, center + Z95 * s95])
        q = _widening(center, q)
        return _forecast(self.name, self.origin, np.exp(center), np.exp(q))
