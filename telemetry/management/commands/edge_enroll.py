from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hashinsight.core.errors import DomainError
from sites.models import Site, Zone
from telemetry import devices


class Command(BaseCommand):
    help = (
        "Create a one-time enrollment code for a new edge collector at a site (optionally a zone). "
        "The code is printed once, is valid 24 hours and works once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", required=True, help="site slug")
        parser.add_argument("--zone", help="zone name or id (within the site)")

    def handle(self, *args, site, zone=None, **opts):
        site_obj = Site.objects.filter(slug=site).first()
        if site_obj is None:
            raise CommandError(f"No site {site!r}.")
        zone_obj = None
        if zone:
            zones = Zone.objects.filter(site=site_obj)
            zone_obj = zones.filter(name=zone).first()
            if zone_obj is None and zone.isdigit():
                zone_obj = zones.filter(pk=int(zone)).first()
            if zone_obj is None:
                raise CommandError(f"No zone {zone!r} at site {site!r}.")
        try:
            enrollment, code = devices.enrollment_code_create(site=site_obj, zone=zone_obj, actor=None)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        expires = timezone.localtime(enrollment.expires_at, timezone.get_fixed_timezone(0))
        where = f"{site_obj.slug}" + (f" / {zone_obj.name}" if zone_obj else "")
        self.stdout.write(f"Enrollment code for {where}: {code}")
        self.stdout.write(f"Expires {expires:%Y-%m-%d %H:%M} UTC; it works once. It is not shown again.")
