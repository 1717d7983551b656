"""GET /api/forecast/<user_id> from the cache: p50/p95 of cached reads (the issue's figure: p95 < 50 ms), the
cold build (a miss: network forecasts + the user's revenue), and, with --train, the registry's short training
(12 weekly origins, horizons 7/14/30) of every algorithm on the shipped history with its 7-day MAPE next to naive.

    DATABASE_URL=postgres://…/h_forecastreg_bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/forecast_api.py [--reads 500] [--train]

In-process (Django's test client, session auth): it measures the view, the cache read and the JSON rendering,
not a network hop. The full 2019→ backtest is bench/forecast_backtest.py."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_forecastreg_bench")
from _setup import django_setup, machine, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--train", action="store_true", help="train every algorithm first (CPU: about a minute)")
    args = parser.parse_args()
    django_setup(miners=10)

    from decimal import Decimal

    from django.test import Client

    from hashinsight.core import cache as cache_helper
    from hashinsight.tests.factories import MinerModelFactory, PortfolioEntryFactory, UserFactory
    from intelligence import forecast_tasks, forecasting
    from intelligence.models import ForecastModel

    print(f"# /api/forecast/<user_id> — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC — {machine()}")
    frame = forecasting.network_frame()
    print(f"# market data {frame.index[0].date()} … {frame.index[-1].date()} ({len(frame)} days)")
    if args.train:
        t0 = time.perf_counter()
        result = forecast_tasks._train(activate_best=True, trigger="manual")
        print(f"\n## training ({time.perf_counter() - t0:.0f} s, job result {result['activated']=})")
        ids = [m["id"] for m in result["models"]]
        for m in ForecastModel.objects.filter(pk__in=ids).order_by("target", "algorithm"):
            row = (m.backtest.get("horizons") or {}).get("7") or {}
            naive = row.get("naive") or {}
            secs = (m.backtest.get("seconds") or {}).get(m.algorithm)
            print(f"{m.target:<10} {m.algorithm:<20} v{m.version:<3} {m.status:<9} "
                  f"MAPE7 {row.get('mape', float('nan')):6.2f} naive {naive.get('mape', float('nan')):6.2f} "
                  f"cov80 {row.get('coverage80', float('nan')):5.1f}  fit+predict {secs or 0:5.1f} s  "
                  f"{m.error[:60]}")  # fmt: skip
    user = UserFactory(username=f"bench-forecast-{time.time_ns()}", role="CUSTOMER")
    PortfolioEntryFactory(user=user, model=MinerModelFactory(), quantity=100, power_price_usd_per_kwh=Decimal("0.05"))
    client = Client()
    client.force_login(user)
    url = f"/api/forecast/{user.pk}"
    # The cold build, as the refresh job does it (no worker runs here, so a stale entry left by an earlier run
    # with the same user id would otherwise be served stale for ever).
    t0 = time.perf_counter()
    cache_helper.build_and_store("forecast", id=user.pk)
    cold = (time.perf_counter() - t0) * 1000
    first = client.get(url)
    assert first.status_code == 200, first.content[:300]
    body = first.json()
    print(f"\n## cold build (forecast_refresh's work): {cold:.0f} ms; then X-Cache {first['X-Cache']}")
    for key in ("price", "difficulty", "hashprice", "revenue"):
        part = body[key]
        p = part["points"][6]
        print(f"{key:<10} {part['algorithm']:<20} day 7: {p['yhat']:.6g} (80 % {p['lo80']:.6g} … {p['hi80']:.6g}) "
              f"{part['fallback_reason']}")  # fmt: skip
    times, states = [], {}
    for _ in range(args.reads):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        states[r["X-Cache"]] = states.get(r["X-Cache"], 0) + 1
    print(f"\n## cached reads: {summary(times)}; X-Cache {states}")
    backend = cache_helper.caches["default"].__class__.__name__
    print(f"# cache backend: {backend}; database: {os.environ['DATABASE_URL'].split('@')[-1]}")


if __name__ == "__main__":
    main()
