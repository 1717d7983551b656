"""Walk-forward backtest on the shipped daily history (intelligence/data/btc_daily.csv): BTC price, difficulty and
hashprice at 7 and 30 days, every model next to naive, with the time each model took.

    .venv/bin/python bench/forecast_backtest.py [--start 2019-01-01] [--step 7] [--refit-every 4]
                                                [--targets price,difficulty,hashprice] [--models ...] [--quick]

Origins every ``--step`` days from ``--start`` to the last day with a 7-day actual; parameters refitted every
``--refit-every`` origins (the fitted model gets the newer data in between). ``--quick`` uses fewer origins
(every 28 days from 2023) to check the script. No Django, no network.

Hashprice here is USD per TH/s per day from price, difficulty and the halving-schedule subsidy, **without fees**:
the shipped fee data cover only 1,556 of the days in three blocks, and switching fees in and out would put
jumps into the series that no model could or should forecast (fees were 1-5 % of revenue most of the time).
Difficulty: the three missing days of 2025-11 are carried forward (a step function has no slope to interpolate).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from intelligence.algorithms.backtest import candidates_from, choose_active, walk_forward  # noqa: E402
from intelligence.algorithms.forecast import (  # noqa: E402
    DifficultyEpochForecaster,
    HashpriceCompositeForecaster,
    NaiveForecaster,
    ProphetForecaster,
    XGBoostForecaster,
    subsidy_btc,
)
from intelligence.algorithms.hashprice import hashprice_usd_per_th_day  # noqa: E402

DATA = ROOT / "intelligence" / "data" / "btc_daily.csv"


def load(path: Path = DATA) -> pd.DataFrame:
    df = pd.read_csv(path, parse_dates=["date"]).set_index("date")
    df = df[["price_usd", "difficulty", "hashrate_ths"]].copy()
    df = df.loc[: df.price_usd.last_valid_index()]
    df["difficulty"] = df.difficulty.ffill()
    df["hashrate_ths"] = df.hashrate_ths.interpolate(limit_direction="forward")
    df["hashprice_usd_per_ths_day"] = hashprice(df)
    return df


def hashprice(df: pd.DataFrame) -> pd.Series:
    """USD per TH/s per day, subsidy only (fees 0), by hashprice.py's formula."""
    values = hashprice_usd_per_th_day(df.price_usd.to_numpy(), df.difficulty.to_numpy(), subsidy_btc(df.index), 0.0)
    return pd.Series(values, index=df.index)


def model_factories(target: str, quick: bool) -> dict:
    samples = 200 if quick else 300
    models = {"naive": lambda: NaiveForecaster()}
    if target == "difficulty":
        models["epoch"] = lambda: DifficultyEpochForecaster()
    if target == "hashprice":
        models["composite"] = lambda: HashpriceCompositeForecaster()
    models["prophet"] = lambda: ProphetForecaster(samples=samples)
    models["xgboost"] = lambda: XGBoostForecaster()
    return models


def machine() -> str:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--step", type=int, default=7)
    parser.add_argument("--refit-every", type=int, default=4)
    parser.add_argument("--targets", default="price,difficulty,hashprice")
    parser.add_argument("--models", default="", help="comma list to restrict (default: all for the target)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    start, step = ("2023-01-01", 28) if args.quick else (args.start, args.step)
    df = load()
    columns = {"price": "price_usd", "difficulty": "difficulty", "hashprice": "hashprice_usd_per_ths_day"}
    print(f"# forecast backtest — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}")
    print(f"# data {df.index[0].date()} … {df.index[-1].date()}; origins every {step} d from {start}; "
          f"refit every {args.refit_every} origins; horizons 7, 30 d")  # fmt: skip
    wanted = {m for m in args.models.split(",") if m}
    for target in args.targets.split(","):
        factories = model_factories(target, args.quick)
        if wanted:
            factories = {k: v for k, v in factories.items() if k in wanted or k == "naive"}
        t0 = time.perf_counter()
        result = walk_forward(
            df[columns[target]],
            factories,
            horizons=(7, 30),
            start=start,
            step_days=step,
            refit_every=args.refit_every,
            exog=df,
            target=target,
        )
        wall = time.perf_counter() - t0
        print(f"\n## {target} ({columns[target]}): {len(result.origins)} origins, "
              f"{result.origins[0].date()} … {result.origins[-1].date()}, {wall:.0f} s")  # fmt: skip
        print(f"{'model':<10} {'h':>3} {'n':>4} {'RMSE':>12} {'RMSE%':>7} {'MAE':>12} {'MAPE%':>7} "
              f"{'cov80':>6} {'cov95':>6} {'vs naive':>9} {'fail':>4} {'time s':>7}")  # fmt: skip
        for h in result.horizons:
            base = result.metric("naive", h)
            for m in (x for x in result.metrics if x.horizon == h):
                rel = (m.mape / base.mape - 1) * 100 if base and base.mape else np.nan
                print(
                    f"{m.model:<10} {h:>3} {m.n:>4} {m.rmse:>12.5g} {m.rmse_pct:>7.2f} {m.mae:>12.5g} {m.mape:>7.2f} "
                    f"{m.coverage80:>6.1f} {m.coverage95:>6.1f} {rel:>+8.1f}% {m.failures:>4} "
                    f"{result.seconds[m.model]:>7.1f}"
                )
        for h in result.horizons:
            choice = choose_active(
                candidates_from(result, horizon=h, trained_at=datetime.now(UTC)),
                now=datetime.now(UTC),
                max_age=pd.Timedelta(days=8).to_pytimedelta(),
            )
            print(f"active at {h} d: {choice.name} ({choice.reason})")
        for name, errs in result.errors.items():
            print(f"failures of {name}: {len(errs)}, first: {errs[0]}")


if __name__ == "__main__":
    main()
