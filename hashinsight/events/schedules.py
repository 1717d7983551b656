"""The periodic jobs, declared in one place. ``sync_schedules`` (run by a migration and by
``manage.py sync_schedules``) creates missing ones; admins edit, pause and resume them in admin
(django-celery-beat) or through /api/v1/schedules, and those edits are kept."""

from __future__ import annotations

# Every periodic job runs on the ``housekeeping`` queue, which a worker slot of its own consumes:
# a backlog of event hand-offs on ``default`` must never delay the relay that recovers lost events,
# nor the heartbeat that tells /api/health a worker is alive.
HOUSEKEEPING_QUEUE = "housekeeping"
# Rollups go with the ingest-side telemetry work (settings.CELERY_TASK_ROUTES "telemetry.*").
TELEMETRY_QUEUE = "telemetry"
# Forecasts, plans and scans go with the intelligence work (settings.CELERY_TASK_ROUTES "intelligence.*").
INTELLIGENCE_QUEUE = "intelligence"

SCHEDULES = [
    # name, task, every (seconds), queue, description
    ("outbox relay", "events.relay", 10, HOUSEKEEPING_QUEUE,
     "Re-send outbox events whose hand-off was missed or whose worker died."),
    ("worker heartbeat", "observability.worker_heartbeat", 30, HOUSEKEEPING_QUEUE,
     "Proves a worker is consuming; read by /api/health."),
    ("cache warming", "core.warm_caches", 300, HOUSEKEEPING_QUEUE,
     "Pre-computes portfolio and site figures, most active first."),
    ("housekeeping", "events.prune", 3600, HOUSEKEEPING_QUEUE,
     "Deletes finished outbox rows after 7 days and job runs after 30; marks runs abandoned by a dead worker."),
    ("telemetry 5-minute rollup", "telemetry.rollup_5m", 60, TELEMETRY_QUEUE,
     "Rolls raw samples into 5-minute history (miners and sites), catching up after downtime."),
    ("telemetry daily rollup", "telemetry.rollup_daily", 3600, TELEMETRY_QUEUE,
     "Rolls 5-minute history into daily summaries (miners and sites) for each complete UTC day."),
    ("telemetry retention", "telemetry.retention", 3600, HOUSEKEEPING_QUEUE,
     "Creates telemetry partitions ahead, drops expired ones, deletes rows past retention."),
    ("alert rules: offline miners", "telemetry.evaluate_offline", 60, TELEMETRY_QUEUE,
     "Raises and resolves the offline alerts of miners that stopped reporting (they send nothing to react to)."),
    ("commands: expiry", "commands.expire", 30, HOUSEKEEPING_QUEUE,
     "Times out commands past their expiry: not approved, not dispatched or not acknowledged in time."),
    ("commands: verification", "commands.verify", 5, TELEMETRY_QUEUE,
     "Verifies acknowledged commands' effects from telemetry; alerts when an effect is not seen in its window."),
    ("market data refresh", "intelligence.market_refresh", 3600, INTELLIGENCE_QUEUE,
     "Fetches the configured live market feed (MARKET_FEED) and upserts its days; without a feed it does nothing."),
    ("power prices: feed refresh", "intelligence.power_prices_refresh", 300, INTELLIGENCE_QUEUE,
     "For every site in POWER_PRICE_FEEDS, fetches day-ahead and real-time prices from the last stored interval on "
     "and upserts them; a feed's failure is recorded per site in the job run and /api/health. Without a feed it does "
     "nothing."),
    ("curtailment: plan tomorrow", "intelligence.plan_tomorrow", 3600, INTELLIGENCE_QUEUE,
     "Queues tomorrow's day-ahead curtailment plan (site time) for every site with day-ahead prices for it; "
     "a day whose inputs did not change re-uses its plan (cached as optimize:{site}:{date})."),
    ("curtailment: real-time responder", "intelligence.respond_realtime", 60, INTELLIGENCE_QUEUE,
     "For every site with its real-time responder enabled: on a new real-time price interval, curtails or restores "
     "miner groups whose breakeven the nowcast price crossed (CURTAIL / HASHING_ENABLE through the control plane); "
     "once per interval (last_interval_start, one ResponderDecision per site and interval)."),
    ("curtailment: event tick", "intelligence.curtailment_event_tick", 30, INTELLIGENCE_QUEUE,
     "Moves curtailment events along: acknowledged commands make them active, telemetry confirms each miner (power "
     "and hashrate both down), drift is re-curtailed or flagged, batches are restored one interval apart, and each "
     "miner's energy avoided and revenue forgone are settled."),
    ("forecasts: refresh", "intelligence.forecast_refresh_all", 3600, INTELLIGENCE_QUEUE,
     "Rebuilds forecast:{user} (network forecasts shared, each portfolio's revenue) for users with a portfolio."),
    ("forecasts: train models", "intelligence.train_models", 7 * 24 * 3600, INTELLIGENCE_QUEUE,
     "Trains every algorithm of BTC price, difficulty and hashprice (12 weekly backtest origins next to naive) and "
     "activates the best that beats naive; the forecast service falls back to naive otherwise."),
    ("anomaly scan", "intelligence.anomaly_scan", 300, INTELLIGENCE_QUEUE,
     "Scores every miner's newest hour of 5-minute history (hashrate, chip temperature, power) against its usual "
     "level (hourly baselines kept in the cache) and its peers; raises and resolves the anomaly alerts."),
    ("miner health", "intelligence.health_predict_all", 3600, INTELLIGENCE_QUEUE,
     "Scores every miner's failure risk once (MinerHealth), then preloads the sites' and zones' power forecasts "
     "for the new hour."),
    ("forecasts: revenue per site and client", "intelligence.revenue_refresh_all", 3600, INTELLIGENCE_QUEUE,
     "Rebuilds revenue_forecast:{subject} (site:<id>, customer:<id>) for every site and hosting client with an "
     "active miner; the hashprice forecast is shared with the users' refresh."),
    ("smart alerts", "intelligence.smart_alerts", 3600, INTELLIGENCE_QUEUE,
     "Raises and resolves forecast_error (the newest network forecast with 7 realised days missed by more than "
     "SMART_ALERT_FORECAST_MAPE_PCT) and roi_down (profit of the last 7 market days down more than "
     "SMART_ALERT_ROI_DROP_PCT on the 7 before, per site and per hosting client); records the fleet's ROI drift "
     "for /api/health."),
    # The hosting business loop (issue 10): invoices, payments, proofs, reports.
    ("billing: monthly invoices", "billing.build_monthly_invoices", 3600, INTELLIGENCE_QUEUE,
     "From 02:00 UTC on the 1st, builds the previous month's draft invoice (lines and per-miner-day statement) for "
     "every hosting contract that has none; idempotent, issued invoices are never touched."),
    ("billing: chain confirmations", "billing.check_chain_payments", 600, HOUSEKEEPING_QUEUE,
     "Asks the chain adapter (BILLING_CHAIN_ADAPTER; offline by default) about pending crypto payments: enough "
     "confirmations (BTC 3, USDT 20) confirm them and refresh their invoice; a failure report fails them."),
    ("billing: overdue and reminders", "billing.mark_overdue_and_remind", 3600, HOUSEKEEPING_QUEUE,
     "Marks issued and partially paid invoices past due as overdue and e-mails the reminders due at 1, 7 and 14 days "
     "overdue (each once) to the client's billing e-mail and contacts."),
    ("proofs: close days", "billing.close_proof_days", 3600, HOUSEKEEPING_QUEUE,
     "Closes every past UTC day with issued statements or certificates not in a tree yet (oldest first, catching up "
     "after downtime): the day's Merkle tree with the audit chain's head, its root and OP_RETURN script stored; a "
     "closed day is never rebuilt. Broadcasts nothing unless BILLING_BROADCAST_OP_RETURN."),
    ("reports: schedules", "reports.run_schedules", 3600, HOUSEKEEPING_QUEUE,
     "Queues last month's report for every enabled report schedule on or after its day of the month, once per "
     "month; the rendered files are e-mailed to its recipients as expiring links."),
]  # fmt: skip


def sync_schedules(IntervalSchedule=None, PeriodicTask=None) -> int:
    if IntervalSchedule is None:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask
    created = 0
    for name, task, seconds, queue, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        _, was_created = PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "queue": queue, "description": description}
        )
        created += was_created
    return created


def move_to_housekeeping_queue(PeriodicTask) -> int:
    """Existing schedules of these tasks that still name the old ``default`` queue move to
    housekeeping (an admin's own choice of another queue is kept)."""
    tasks = [task for _, task, *_ in SCHEDULES]
    return PeriodicTask.objects.filter(task__in=tasks, queue__in=["", "default", None]).update(queue=HOUSEKEEPING_QUEUE)
