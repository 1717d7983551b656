from django.core.management.base import BaseCommand

from hashinsight.events.schedules import sync_schedules


class Command(BaseCommand):
    help = "Create the periodic jobs declared in hashinsight/events/schedules.py that do not exist yet."

    def handle(self, *args, **options):
        created = sync_schedules()
        self.stdout.write(self.style.SUCCESS(f"{created} schedule(s) created; existing ones left as edited."))
