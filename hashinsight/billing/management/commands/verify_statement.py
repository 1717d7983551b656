"""``manage.py verify_statement FILE PROOF``: is FILE (a statement CSV, an SLA certificate JSON) the document the
inclusion proof PROOF is about, and is it in the day's Merkle tree?

Checks, all reported: the proof is well formed; FILE's SHA-256 is the proof's leaf (a certificate also by its
canonical JSON); the path leads from the leaf to the proof's root and fits its index; the audit chain's head is in
the same tree; the OP_RETURN script carries the root; and, when this installation's database can be read, the root
is the one stored for that day. Without a database (or with ``--offline``) the root comes from the proof itself,
and the command says so: compare it with the published root or the OP_RETURN transaction.

Exit status 0 when every check made passed, 1 otherwise (2 for a file that cannot be read)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hashinsight.billing import proofs

MARKS = {True: "OK", False: "FAILED", None: "--"}


class Command(BaseCommand):
    help = "Verify a statement (or SLA certificate) file against its Merkle inclusion proof."
    requires_system_checks: list = []  # works with only the two files, without a configured database

    def add_arguments(self, parser):
        parser.add_argument("file", help="the statement CSV or SLA certificate JSON, as downloaded")
        parser.add_argument("proof", help="the inclusion proof JSON, as downloaded")
        parser.add_argument("--offline", action="store_true", help="do not compare with this database's root")

    def handle(self, *args, file, proof, offline=False, **options):
        try:
            data = Path(file).read_bytes()
            raw_proof = Path(proof).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {exc.filename}: {exc.strerror}", returncode=2) from exc
        lookup = None if offline else proofs.stored_root_lookup
        result = proofs.verify_document(data, raw_proof, stored_root=lookup)
        if result.leaf:
            obj = result.leaf.get("object") or {}
            label = obj.get("number") or obj.get("month") or obj.get("id") or ""
            self.stdout.write(f"Document: {file} ({result.leaf.get('kind')} {label}), tree of {result.day}")
        for check in result.checks:
            self.stdout.write(f"  [{MARKS[check.ok]:>6}] {check.name}: {check.detail}")
        if result.root:
            source = "this database's stored root" if result.root_source == "database" else "the proof itself (offline)"
            self.stdout.write(f"Root {result.root} checked against {source}")
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"OK: {result.message}"))
            return
        self.stdout.write(self.style.ERROR(f"FAILED ({result.reason}): {result.message}"))
        sys.exit(1)
