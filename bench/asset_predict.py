"""Per-asset power forecasts and miner health on PostgreSQL: how fast ``POST /api/v1/assets/{id}/predict`` answers
(cold, preloaded in the process, preloaded in the shared cache, posted data) and how long the health run takes over
every miner.

A database of its own (dropped afterwards unless --keep): migrate, ``seed_demo --miners N``, then, generated
server-side with INSERT … SELECT over generate_series: 14 days of ``daily`` per miner (the health features), the
last two hours and the same two hours yesterday of ``history_5m`` per miner (fan and chip temperature now),
28 days of ``site_history_5m`` per site, and 28 days of ``history_5m`` for the ``--zone-miners`` miners moved into
a zone of their own (the zone and miner forecasts read them). Requests go through Django's test client as the owner
(the whole DRF stack, no network); Redis is the cache when REDIS_URL is set.

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/asset_predict.py [--miners 100000] [--requests 200]

Target: every predict call < 500 ms; the health run over 100,000 miners in one feature query."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _setup import django_setup, machine, summary  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/h_assets_bench"


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def load(connection, end: datetime, zone_miners: int) -> int:
    """The history described in the module docstring; returns the bench zone's id."""
    from miners.models import Miner
    from sites.models import Site, Zone
    from telemetry import partitions
    from telemetry.models import RollupCursor
    from telemetry.rollups import CURSOR_5M

    today = end.date()
    partitions.ensure_partitions(now=end)
    site = Site.objects.order_by("pk").first()
    zone, _ = Zone.objects.get_or_create(site=site, name="bench-zone", defaults={"capacity_kw": 1000})
    ids = list(Miner.objects.filter(site=site).order_by("pk").values_list("pk", flat=True)[:zone_miners])
    Miner.objects.filter(pk__in=ids).update(zone=zone)
    t = time.perf_counter()
    with connection.cursor() as c:
        c.execute("SET synchronous_commit = off")
        c.execute(
            """
            INSERT INTO telemetry_daily (miner_id, day, site_id, customer_id, sample_count, buckets_reported,
                avg_hashrate_ths, energy_kwh, uptime_pct, max_temp_chip_c, restarts, accepted_shares, rejected_shares)
            SELECT m.id, d::date, m.site_id, m.customer_id, 1440, 288,
                   mm.hashrate_ths * (0.97 + random() * 0.04)
                       * CASE WHEN m.id %% 500 = 0 AND d >= %s THEN 0.8 ELSE 1 END,
                   mm.power_w * 24 / 1000.0, 99.5, 68 + random() * 6 + CASE WHEN m.id %% 700 = 0 THEN 20 ELSE 0 END,
                   CASE WHEN m.id %% 900 = 0 THEN 3 ELSE 0 END, 100000, (random() * 200)::int
            FROM miners_miner m JOIN miners_minermodel mm ON mm.id = m.model_id
            CROSS JOIN generate_series(%s::date, %s::date, interval '1 day') d
            """,
            [today - timedelta(days=3), today - timedelta(days=14), today - timedelta(days=1)],
        )
        for base in (end, end - timedelta(days=1)):
            c.execute(
                """
                INSERT INTO telemetry_history_5m (miner_id, bucket, site_id, customer_id, sample_count, hashing_count,
                    uptime_fraction, avg_hashrate_ths, avg_power_w, min_fan_rpm, max_temp_chip_max_c, accepted_shares,
                    rejected_shares, restarts)
                SELECT m.id, b, m.site_id, m.customer_id, 5, 5, 1.0, 200, 3500,
                       6000 * CASE WHEN m.id %% 800 = 0 AND %s THEN 0.6 ELSE 1 END, 70 + random() * 3, 100, 0, 0
                FROM miners_miner m
                CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes',
                                           interval '5 minutes') b
                WHERE m.zone_id <> %s
                """,
                [base == end, base - timedelta(hours=2), base, zone.pk],
            )
        start = end - timedelta(days=28)
        c.execute(
            """
            INSERT INTO telemetry_history_5m (miner_id, bucket, site_id, customer_id, sample_count, hashing_count,
                uptime_fraction, avg_hashrate_ths, avg_power_w, min_fan_rpm, max_temp_chip_max_c, accepted_shares,
                    rejected_shares, restarts)
            SELECT m.id, b, m.site_id, m.customer_id, 5, 5, 1.0, 200,
                   3500 * (1 - 0.3 * (extract(hour from b) BETWEEN 14 AND 18)::int) + random() * 50, 6000, 70, 100, 0, 0
            FROM miners_miner m
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') b
            WHERE m.zone_id = %s
            """,
            [start, end, zone.pk],
        )
        c.execute(
            """
            INSERT INTO telemetry_site_history_5m (site_id, bucket, miners_reporting, miners_hashing, hashrate_ths,
                power_w, uptime_fraction)
            SELECT s.id, b, 30000, 30000, 6e6,
                   1.05e8 * (1 - 0.3 * (extract(hour from b) BETWEEN 14 AND 18)::int) * (0.99 + random() * 0.02), 1.0
            FROM sites_site s
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '5 minutes', interval '5 minutes') b
            """,
            [start, end],
        )
        c.execute("ANALYZE")
    RollupCursor.objects.update_or_create(layer=CURSOR_5M, defaults={"done_until": end})
    print(f"history loaded in {time.perf_counter() - t:.0f} s")
    return zone.pk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--miners", type=int, default=100_000)
    parser.add_argument("--zone-miners", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--health-only", action="store_true", help="the health runs only, no predict calls")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(os.environ["DATABASE_URL"])
            print(f"dropped {urlparse(os.environ['DATABASE_URL']).path.lstrip('/')}")


def run(args) -> None:
    import subprocess

    t = time.perf_counter()
    django_setup(args.miners)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from rest_framework.test import APIClient

    from hashinsight.core import cache as cache_helper
    from intelligence import asset_forecast
    from intelligence.miner_health import health_compute
    from miners.models import Miner
    from sites.models import Site
    from sites.selectors import Scope

    settings.ALLOWED_HOSTS = ["*"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"# asset predict + miner health — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start; code at {commit.strip()}")
    print(f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    print(f"setup (migrate + seed_demo {args.miners:,} miners): {time.perf_counter() - t:.0f} s")
    now = datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    zone_id = load(connection, end, args.zone_miners)
    print(f"database: {Miner.objects.count():,} miners; load average {os.getloadavg()[0]:.1f}")

    # --- miner health over every miner ---------------------------------------------------------------------------
    for i in range(2):
        t0 = time.perf_counter()
        result = health_compute(Scope("all"))
        wall = time.perf_counter() - t0
        print(f"health run {i + 1}: {wall:.1f} s wall ({result.seconds}); {result.miners:,} miners, "
              f"{result.scored:,} scored, tiers {result.tiers}; load {os.getloadavg()[0]:.1f}")  # fmt: skip

    if args.health_only:
        return
    # --- predict --------------------------------------------------------------------------------------------------
    owner = get_user_model().objects.get(username="owner")
    client = APIClient()
    client.force_authenticate(owner)
    site = Site.objects.order_by("pk").first()
    miner = Miner.objects.filter(zone_id=zone_id).order_by("pk").first()
    assets = {"site (rollup)": f"site:{site.pk}", f"zone ({args.zone_miners} miners)": f"zone:{zone_id}",
              "miner": f"miner:{miner.pk}"}  # fmt: skip

    server_ms: list[float] = []

    def post(asset, body):
        t0 = time.perf_counter()
        r = client.post(f"/api/v1/assets/{asset}/predict", body, format="json")
        ms = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, (asset, r.status_code, r.content[:300])
        # the view's own time (Server-Timing), without the test client encoding a big body
        server_ms.append(float(r["Server-Timing"].split("dur=")[1]))
        return ms, r.json()

    def forget():
        asset_forecast.lru_clear()
        cache.delete_pattern("*asset_forecast:*") if hasattr(cache, "delete_pattern") else cache.clear()

    for label, asset in assets.items():
        cold = []
        for _ in range(5):
            forget()
            ms, body = post(asset, {"forecast_horizon": 168})
            cold.append(ms)
        print(f"cold (history query + fit), {label}: {summary(cold)}; method {body['method']}, "
              f"{body['history_hours']} h of history from {body['source']}")  # fmt: skip
    forget()
    t0 = time.perf_counter()
    warmed = asset_forecast.asset_forecast_warm()
    print(f"warm-up of every site and zone ({warmed['warmed']}): {time.perf_counter() - t0:.1f} s")
    for label, asset in assets.items():
        post(asset, {"forecast_horizon": 24})  # into this process's LRU
        server_ms.clear()
        lru = [post(asset, {"forecast_horizon": random.randint(1, 168)})[0] for _ in range(args.requests)]
        print(f"preloaded (process LRU), {label}: {summary(lru)}; in the view: {summary(server_ms)}")
    shared = []
    for _ in range(50):
        asset_forecast.lru_clear()
        ms, body = post(assets["site (rollup)"], {"forecast_horizon": 168})
        shared.append(ms)
    print(
        f"preloaded (shared cache, another process's LRU empty), site: {summary(shared)}; served {body['served_from']}"
    )
    rng = random.Random(0)
    for days in (7, 14):
        times = []
        server_ms.clear()
        for k in range(20):
            t_start = now - timedelta(days=days)
            data = [
                {"ts": (t_start + timedelta(minutes=5 * j)).isoformat(), "power_kw": 3.5 + rng.random() * 0.1 + k}
                for j in range(days * 288)
            ]
            times.append(post(assets["miner"], {"forecast_horizon": 168, "historical_data": data,
                                                "interval_minutes": 5})[0])  # fmt: skip
        print(
            f"posted historical_data, {days} days of 5-minute points ({days * 288:,}): {summary(times)}; "
            f"in the view (Server-Timing): {summary(server_ms)}"
        )
    key = cache_helper.cache_key("asset_forecast", asset=assets["miner"], view="all", hour="YYYYMMDDHH")
    print(f"load average at the end {os.getloadavg()[0]:.1f}; cache key e.g. {key}")


if __name__ == "__main__":
    main()
