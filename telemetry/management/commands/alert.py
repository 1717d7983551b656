from django.core.management.base import BaseCommand, CommandError

from hashinsight.core.errors import DomainError
from miners.models import Miner
from sites.models import Site
from telemetry import services
from telemetry.models import Alert


class Command(BaseCommand):
    help = "Raise, acknowledge or resolve an alert (through the same service as rules and admin)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        raise_ = sub.add_parser("raise")
        raise_.add_argument("--site", required=True, help="site slug")
        raise_.add_argument("--miner", help="miner serial")
        raise_.add_argument("--type", required=True, dest="alert_type")
        raise_.add_argument("--severity", default="warning", choices=Alert.Severity.values)
        raise_.add_argument("--message", required=True)
        for name in ("ack", "resolve"):
            sub.add_parser(name).add_argument("alert_id", type=int)

    def handle(self, *args, action, **opts):
        try:
            if action == "raise":
                site = Site.objects.filter(slug=opts["site"]).first() or self._missing("site", opts["site"])
                miner = None
                if opts.get("miner"):
                    miner = Miner.objects.filter(serial=opts["miner"]).first() or self._missing("miner", opts["miner"])
                alert = services.alert_raise(
                    site=site, miner=miner, alert_type=opts["alert_type"], severity=opts["severity"],
                    message=opts["message"],
                )  # fmt: skip
            else:
                alert = Alert.objects.filter(pk=opts["alert_id"]).first() or self._missing("alert", opts["alert_id"])
                fn = services.alert_acknowledge if action == "ack" else services.alert_resolve
                alert = fn(alert=alert, actor=None)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"alert {alert.pk}: {alert.status}, {alert.severity}, count {alert.count}")

    def _missing(self, what, value):
        raise CommandError(f"No {what} {value!r}.")
