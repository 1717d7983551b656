"""``manage.py refresh_power_prices [--site SLUG]``: the power price feeds' refresh, once (what Beat runs every
5 minutes as ``intelligence.power_prices_refresh``), for cron users and tests. Recorded as a JobRun like the Beat
job, so /api/health shows its outcome. A feed that fails is reported per site and the command exits non-zero after
the other sites were refreshed (cron mails it); nothing of a failed market is written."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from intelligence import power_feeds
from intelligence.power_feed_tasks import power_prices_refresh_run


class Command(BaseCommand):
    help = "Fetch and load new power prices from the feeds in POWER_PRICE_FEEDS (all sites, or one)."

    def add_arguments(self, parser):
        parser.add_argument("--site", help="only this site's slug")

    def handle(self, *args, site: str | None, **options):
        configured = power_feeds.configured_feed_sites()
        if site is not None and site not in configured:
            raise CommandError(f"No power price feed is configured for {site!r} (POWER_PRICE_FEEDS).")
        if not configured:
            self.stdout.write("No power price feed is configured (POWER_PRICE_FEEDS): nothing to do.")
            return
        result = power_prices_refresh_run(slug=site, trigger="manual")
        for outcome in result["sites"]:
            markets = ", ".join(
                f"{market} {m['error']}" if "error" in m else f"{market} +{m['new']} (last {m['last'] or '—'})"
                for market, m in outcome["markets"].items()
            )
            line = f"{outcome['site']} ({outcome['feed']}): {markets or outcome['error']}"
            self.stdout.write(self.style.ERROR(line) if outcome["error"] else self.style.SUCCESS(line))
        if result["failed"]:
            raise CommandError(f"{result['failed']} of {len(result['sites'])} feeds failed (recorded in the job run).")
