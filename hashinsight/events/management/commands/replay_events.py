from django.core.management.base import BaseCommand, CommandError

from hashinsight.events import processing
from hashinsight.events.models import EventFailure


class Command(BaseCommand):
    help = "Replay failed outbox events (all unreplayed failures, or those of the given event ids)."

    def add_arguments(self, parser):
        parser.add_argument("event_ids", nargs="*", help="outbox event ids (default: every unreplayed failure)")
        parser.add_argument("--type", dest="event_type", help="only failures of this event type")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, event_ids, event_type, dry_run, **options):
        failures = EventFailure.objects.filter(replayed_at__isnull=True).select_related("event")
        if event_ids:
            failures = failures.filter(event_id__in=event_ids)
        if event_type:
            failures = failures.filter(event__event_type=event_type)
        failures = list(failures)
        if event_ids and not failures:
            raise CommandError("No unreplayed failure for those event ids.")
        seen = set()
        for failure in failures:
            if failure.event_id in seen:
                continue
            seen.add(failure.event_id)
            self.stdout.write(
                f"{'would replay' if dry_run else 'replaying'} {failure.event_id} {failure.event.event_type}"
            )
            if not dry_run:
                processing.replay(failure)
        self.stdout.write(
            self.style.SUCCESS(f"{len(seen)} event(s) {'to replay' if dry_run else 'queued for replay'}.")
        )
