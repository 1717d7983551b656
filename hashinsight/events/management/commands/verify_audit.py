import sys

from django.core.management.base import BaseCommand

from hashinsight.events.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chain: prints OK with the count, or the first broken event (exit status 1)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=2000, help="events read per query")

    def handle(self, *args, batch_size, **options):
        result = verify_chain(batch_size=max(1, batch_size))
        if result.ok:
            head = f" (head #{result.head_seq} {result.head_hash})" if result.head_seq else ""
            self.stdout.write(f"OK {result.count} events{head}")
            return
        broken = result.first_broken
        self.stderr.write(
            f"BROKEN at seq {broken['seq']} ({broken['id']}): {broken['reason']}: {broken['message']}; "
            f"{result.count - 1} events before it verified"
        )
        sys.exit(1)
