"""Daily proof roots (hashinsight.billing.proofs): closing a day, late leaves, catching up, proofs of an issued
invoice's real statement file, the CLI (a changed byte fails), scoping, and the optional broadcast."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from hashinsight.billing import merkle, proofs
from hashinsight.billing.models import ProofLeaf, ProofRoot
from hashinsight.billing.tests.test_proofs_support import issued_invoice, statement_bytes, yesterday
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import verify_chain
from hashinsight.events.models import AuditEvent, OutboxEvent

pytestmark = pytest.mark.django_db
Kind = ProofLeaf.Kind


@pytest.fixture
def invoice_x(farm):
    return issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])


@pytest.fixture
def invoice_y(farm):
    return issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])


def test_close_day_builds_the_tree_stores_the_root_and_anchors_the_audit_head(farm, invoice_x, invoice_y):
    day = yesterday()
    head = AuditEvent.objects.order_by("-seq").first()
    before = AuditEvent.objects.count()
    root = proofs.close_day(day)

    # Leaves ordered by (kind, object id, id), then the audit head; the head is SHA-256 of canonical {hash, seq}.
    head_leaf = hashlib.sha256(f'{{"hash":"{head.event_hash}","seq":{head.seq}}}'.encode()).hexdigest()
    expected = [invoice_x.statement_sha256, invoice_y.statement_sha256, head_leaf]
    assert root.leaf_count == 3
    assert root.root_sha256 == merkle.merkle_root(expected)
    assert (root.audit_head_seq, root.audit_head_hash) == (head.seq, head.event_hash)
    assert root.op_return_hex == "6a2448534931" + root.root_sha256
    leaves = list(ProofLeaf.objects.filter(root=root).order_by("index"))
    assert [(leaf.kind, leaf.index, leaf.sha256) for leaf in leaves] == [
        (Kind.STATEMENT, 0, invoice_x.statement_sha256),
        (Kind.STATEMENT, 1, invoice_y.statement_sha256),
        (Kind.AUDIT_HEAD, 2, head_leaf),
    ]
    # Outbox and audit, in the same transaction; the chain still verifies.
    event = OutboxEvent.objects.get(event_type="proof_root.closed")
    assert event.payload == {"day": day.isoformat(), "root_sha256": root.root_sha256, "leaf_count": 3}
    closing = AuditEvent.objects.get(event_type="proof_root.closed")
    assert closing.payload["root_sha256"] == root.root_sha256 and closing.seq == head.seq + 1
    assert AuditEvent.objects.count() == before + 1
    assert verify_chain().ok

    # Never rebuilt: a second close returns the same row and writes nothing.
    again = proofs.close_day(day)
    assert again.pk == root.pk and again.root_sha256 == root.root_sha256
    assert AuditEvent.objects.count() == before + 1
    assert ProofRoot.objects.count() == 1


def test_a_day_closes_only_once_it_is_over(invoice_x):
    with pytest.raises(DomainError) as err:
        proofs.close_day(proofs.utc_today())
    assert err.value.code == "day_not_over"
    assert not ProofRoot.objects.exists()


def test_a_day_with_nothing_issued_has_no_tree(db):
    assert proofs.close_day(yesterday()) is None
    assert not ProofRoot.objects.exists() and not ProofLeaf.objects.exists()


def test_late_leaf_of_a_closed_day_joins_the_next_open_days_tree(farm, invoice_x):
    two_days_ago = yesterday() - timedelta(days=1)
    ProofLeaf.objects.update(day=two_days_ago)
    first = proofs.close_day(two_days_ago)
    # Issued "two days ago" but committed after the closing (a transaction across midnight): a late leaf.
    late = issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]],
                          day=two_days_ago)  # fmt: skip
    assert proofs.days_to_close() == [yesterday()]
    roots = proofs.close_pending_days()
    assert [r.day for r in roots] == [yesterday()]
    first.refresh_from_db()
    assert first.leaf_count == 2  # unchanged
    leaf = ProofLeaf.objects.get(kind=Kind.STATEMENT, object_id=late.pk)
    assert leaf.root == roots[0] and leaf.day == two_days_ago
    document = proofs.proof_for(leaf)
    assert document["day"] == yesterday().isoformat() and document["issued_day"] == two_days_ago.isoformat()
    assert proofs.verify_document(statement_bytes(late), document, stored_root=proofs.stored_root_lookup).ok


def test_a_late_leaf_waits_when_the_next_day_is_today(farm, invoice_x):
    proofs.close_day(yesterday())
    issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    assert proofs.days_to_close() == []  # today is not over: it joins today's tree


def test_days_close_in_order(farm, invoice_x, invoice_y):
    ProofLeaf.objects.filter(object_id=invoice_x.pk).update(day=yesterday() - timedelta(days=3))
    with pytest.raises(DomainError) as err:
        proofs.close_day(yesterday())
    assert err.value.code == "earlier_day_open"
    assert not ProofRoot.objects.exists()


def test_the_job_catches_up_after_downtime_oldest_first(farm):
    miner = farm.miners[("site-a", "client-x")]
    days = [yesterday() - timedelta(days=n) for n in (5, 3, 1)]
    for day in days:
        issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[miner], day=day)
    from hashinsight.billing.proof_tasks import close_proof_days

    result = close_proof_days.apply().get()
    assert [c["day"] for c in result["closed"]] == [d.isoformat() for d in days]
    roots = list(ProofRoot.objects.order_by("day"))
    assert [r.day for r in roots] == days
    # Each closing is audited, so each day's audit head is a later event than the one before.
    assert roots[0].audit_head_seq < roots[1].audit_head_seq < roots[2].audit_head_seq
    assert close_proof_days.apply().get()["closed"] == []  # nothing left: a rerun changes nothing
    assert ProofRoot.objects.count() == 3


def test_statement_proof_verifies_and_a_changed_byte_fails(farm, invoice_x, invoice_y):
    proofs.close_day(yesterday())
    document = proofs.invoice_proof(user=farm.users["client_x"], invoice_id=invoice_x.pk)
    assert document["leaf"] == {
        "kind": "statement",
        "sha256": invoice_x.statement_sha256,
        "object": {"type": "invoice_statement", "id": invoice_x.pk, "number": invoice_x.number,
                   "period_start": "2026-10-01", "period_end": "2026-10-31"},
    }  # fmt: skip
    assert document["index"] == 0 and document["leaf_count"] == 3 and document["broadcast_txid"] is None
    data = statement_bytes(invoice_x)
    assert hashlib.sha256(data).hexdigest() == invoice_x.statement_sha256

    ok = proofs.verify_document(data, json.dumps(document).encode(), stored_root=proofs.stored_root_lookup)
    assert ok.ok, ok.as_dict()
    assert ok.root_source == "database"
    assert [c.name for c in ok.checks] == ["proof", "document", "path", "audit_head", "op_return", "published_root"]
    assert all(c.ok for c in ok.checks)

    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01  # one bit of one byte
    bad = proofs.verify_document(bytes(changed), document, stored_root=proofs.stored_root_lookup)
    assert not bad.ok and bad.reason == "document_mismatch"
    assert hashlib.sha256(bytes(changed)).hexdigest() in bad.message

    # The other client's statement with this proof: also the document check.
    other = proofs.verify_document(statement_bytes(invoice_y), document, stored_root=proofs.stored_root_lookup)
    assert not other.ok and other.reason == "document_mismatch"


def test_a_tampered_proof_or_root_fails_with_its_reason(farm, invoice_x, invoice_y):
    root = proofs.close_day(yesterday())
    document = proofs.invoice_proof(user=farm.users["owner"], invoice_id=invoice_x.pk)
    data = statement_bytes(invoice_x)

    step = json.loads(json.dumps(document))
    step["proof"][0]["hash"] = "0" * 64
    assert proofs.verify_document(data, step).reason == "path_mismatch"

    # A forged tree: path and root recomputed for another set of leaves; the stored root catches it.
    forged = json.loads(json.dumps(document))
    forged["proof"] = [{"side": "right", "hash": "1" * 64}]
    forged["root"] = merkle.root_from_proof(invoice_x.statement_sha256, forged["proof"])
    forged["op_return_hex"] = merkle.op_return_script(forged["root"])
    forged.pop("index"), forged.pop("audit_head")
    offline = proofs.verify_document(data, forged)
    assert offline.ok and offline.root_source == "proof"  # offline it is only as good as the proof's root...
    online = proofs.verify_document(data, forged, stored_root=proofs.stored_root_lookup)
    assert not online.ok and online.reason == "root_mismatch"  # ...which the stored root refutes
    assert root.root_sha256 in online.message

    wrong_script = json.loads(json.dumps(document))
    wrong_script["op_return_hex"] = merkle.op_return_script("2" * 64)
    assert proofs.verify_document(data, wrong_script).reason == "op_return_mismatch"

    wrong_head = json.loads(json.dumps(document))
    wrong_head["audit_head"]["seq"] += 1
    assert proofs.verify_document(data, wrong_head).reason == "audit_head_mismatch"

    wrong_index = json.loads(json.dumps(document))
    wrong_index["index"] = 2
    assert proofs.verify_document(data, wrong_index).reason == "malformed_proof"

    unknown_day = json.loads(json.dumps(document))
    unknown_day["day"] = "2020-01-01"
    assert proofs.verify_document(data, unknown_day, stored_root=proofs.stored_root_lookup).reason == "root_unknown"

    for garbage in (b"not json", b"[]", b'{"version": 2}', b"\xff\xfe", json.dumps({**document, "root": "x"}).encode()):
        result = proofs.verify_document(data, garbage)
        assert not result.ok and result.reason == "malformed_proof"


def test_proofs_are_scoped_and_wait_for_the_day(farm, invoice_x):
    with pytest.raises(DomainError) as err:
        proofs.invoice_proof(user=farm.users["client_x"], invoice_id=invoice_x.pk)
    assert (err.value.code, err.value.status) == ("proof_day_not_closed", 409)
    proofs.close_day(yesterday())
    for name in ("client_y", "siteowner_b_ro", "customer", "guest"):
        with pytest.raises(DomainError) as err:
            proofs.invoice_proof(user=farm.users[name], invoice_id=invoice_x.pk)
        assert err.value.status == 404, name
    for name in ("client_x", "siteowner_a", "owner", "admin"):
        assert proofs.invoice_proof(user=farm.users[name], invoice_id=invoice_x.pk)["root"]


def test_cli_verifies_the_real_file_and_fails_on_a_changed_byte(farm, invoice_x, tmp_path):
    proofs.close_day(yesterday())
    document = proofs.invoice_proof(user=farm.users["client_x"], invoice_id=invoice_x.pk)
    statement, proof = tmp_path / "statement.csv", tmp_path / "proof.json"
    statement.write_bytes(statement_bytes(invoice_x))
    proof.write_text(json.dumps(document, indent=2))

    out = StringIO()
    call_command("verify_statement", str(statement), str(proof), stdout=out)
    text = out.getvalue()
    assert "OK: " in text and "stored root" in text and "FAILED" not in text

    out = StringIO()
    call_command("verify_statement", str(statement), str(proof), "--offline", stdout=out)
    assert "OK: " in out.getvalue() and "offline" in out.getvalue()

    data = bytearray(statement.read_bytes())
    data[-5] = ord("9") if data[-5] != ord("9") else ord("8")
    statement.write_bytes(bytes(data))
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_statement", str(statement), str(proof), stdout=out)
    assert exit_.value.code == 1
    assert "FAILED (document_mismatch)" in out.getvalue()


def test_cli_offline_when_the_database_cannot_be_read(farm, invoice_x, tmp_path, monkeypatch):
    proofs.close_day(yesterday())
    document = proofs.invoice_proof(user=farm.users["client_x"], invoice_id=invoice_x.pk)
    statement, proof = tmp_path / "s.csv", tmp_path / "p.json"
    statement.write_bytes(statement_bytes(invoice_x))
    proof.write_text(json.dumps(document))
    from django.db import DatabaseError
    from django.db.models.query import QuerySet

    def down(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(QuerySet, "first", down)
    out = StringIO()
    call_command("verify_statement", str(statement), str(proof), stdout=out)
    assert "OK: " in out.getvalue() and "the proof itself (offline)" in out.getvalue()


def test_broadcast_txid_recorded_once_and_audited(farm, invoice_x):
    root = proofs.close_day(yesterday())
    with pytest.raises(DomainError) as err:
        proofs.root_record_broadcast(day=root.day, txid="abc", actor=farm.users["owner"])
    assert err.value.code == "invalid_txid"
    txid = "ab" * 32
    proofs.root_record_broadcast(day=root.day, txid=txid.upper(), actor=farm.users["owner"])
    root.refresh_from_db()
    assert root.broadcast_txid == txid
    assert AuditEvent.objects.filter(event_type="proof_root.broadcast", reference=f"proof_root:{root.day}").count() == 1
    proofs.root_record_broadcast(day=root.day, txid=txid, actor=farm.users["owner"])  # same: no-op
    with pytest.raises(DomainError) as err:
        proofs.root_record_broadcast(day=root.day, txid="cd" * 32, actor=farm.users["owner"])
    assert err.value.code == "already_broadcast"
    assert proofs.proof_for(ProofLeaf.objects.get(object_id=invoice_x.pk))["broadcast_txid"] == txid


class FakeBroadcaster:
    sent: list = []

    def broadcast(self, *, day, script_hex):
        FakeBroadcaster.sent.append((day, script_hex))
        return hashlib.sha256(script_hex.encode()).hexdigest()


def test_broadcast_is_off_by_default_and_uses_the_configured_adapter(farm, invoice_x, settings):
    FakeBroadcaster.sent = []
    settings.BILLING_BROADCAST_ADAPTER = f"{__name__}.FakeBroadcaster"
    root = proofs.close_day(yesterday())
    assert proofs.broadcast_pending() == []  # the flag is off by default
    settings.BILLING_BROADCAST_OP_RETURN = True
    done = proofs.broadcast_pending()
    assert [r.day for r in done] == [root.day]
    assert FakeBroadcaster.sent == [(root.day, root.op_return_hex)]
    root.refresh_from_db()
    assert root.broadcast_txid == hashlib.sha256(root.op_return_hex.encode()).hexdigest()
    assert proofs.broadcast_pending() == []  # already broadcast


@pytest.mark.django_db(transaction=True)
def test_close_day_is_durable_and_commits(farm):
    """A real transaction (no test wrapper): the durable closing commits and its outbox row is there."""
    issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    root = proofs.close_day(yesterday())
    assert ProofRoot.objects.get(day=yesterday()).root_sha256 == root.root_sha256
    assert OutboxEvent.objects.filter(event_type="proof_root.closed").exists()
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError):
        proofs._close_day(yesterday() - timedelta(days=1), actor=None)  # durable: refuses to nest


def test_end_to_end_statement_and_sla_certificate_files_as_the_client_downloads_them(client, farm, tmp_path):
    """Issued by the invoicing service (with its SLA certificate), the day closed by the job, both files and both
    proofs downloaded from the portal by the client, then checked by the CLI; another client's proof is a 404."""
    miner = farm.miners[("site-a", "client-x")]
    invoice = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[miner], certificate=True)
    other = issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    cert = invoice.sla_certificate
    from hashinsight.billing.proof_tasks import close_proof_days

    assert [c["leaves"] for c in close_proof_days.apply().get()["closed"]] == [4]  # 2 statements, 1 cert, audit head

    client.force_login(farm.users["client_x"])
    files = {
        "statement.csv": statement_bytes(invoice),
        "statement-proof.json": client.get(f"/finance/invoices/{invoice.pk}/proof.json").content,
        "certificate.json": client.get(f"/sla/certificates/{cert.pk}/download/").content,
        "certificate-proof.json": client.get(f"/sla-certificates/{cert.pk}/proof.json").content,
    }
    assert client.get(f"/finance/invoices/{other.pk}/proof.json").status_code == 404
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert json.loads(files["certificate-proof.json"])["leaf"]["kind"] == "sla_certificate"
    for document, proof in (("statement.csv", "statement-proof.json"), ("certificate.json", "certificate-proof.json")):
        out = StringIO()
        call_command("verify_statement", str(tmp_path / document), str(tmp_path / proof), stdout=out)
        assert "OK: " in out.getvalue(), out.getvalue()
    # The statement's proof does not fit the certificate, nor the other way round.
    with pytest.raises(SystemExit):
        call_command("verify_statement", str(tmp_path / "certificate.json"), str(tmp_path / "statement-proof.json"),
                     stdout=StringIO())  # fmt: skip


STANDALONE_VERIFIER = """
import hashlib, json, sys

doc, proof = open(sys.argv[1], "rb").read(), json.load(open(sys.argv[2]))
leaf = hashlib.sha256(doc).hexdigest()
assert leaf == proof["leaf"]["sha256"], "the file is not the document of this proof"
node = hashlib.sha256(b"\\x00" + bytes.fromhex(leaf)).digest()
for step in proof["proof"]:
    sibling = bytes.fromhex(step["hash"])
    pair = sibling + node if step["side"] == "left" else node + sibling
    node = hashlib.sha256(b"\\x01" + pair).digest()
assert node.hex() == proof["root"], "the path does not lead to the root"
assert proof["op_return_hex"] == "6a2448534931" + proof["root"]
print("OK: in the tree of", proof["day"], "root", proof["root"])
"""


def test_the_documented_standard_library_verifier_agrees(farm, invoice_x, invoice_y, tmp_path):
    """The README's 15 lines (Python standard library only, no HashInsight) verify the same proof, and refuse a
    changed byte: the format is checkable without us."""
    import subprocess
    import sys

    proofs.close_day(yesterday())
    script, statement, proof = tmp_path / "verify.py", tmp_path / "s.csv", tmp_path / "p.json"
    script.write_text(STANDALONE_VERIFIER)
    proof.write_text(json.dumps(proofs.invoice_proof(user=farm.users["client_y"], invoice_id=invoice_y.pk)))
    statement.write_bytes(statement_bytes(invoice_y))
    ok = subprocess.run([sys.executable, str(script), str(statement), str(proof)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: in the tree of"), ok.stderr
    statement.write_bytes(statement_bytes(invoice_y).replace(b"84.000", b"84.001", 1))
    bad = subprocess.run([sys.executable, str(script), str(statement), str(proof)], capture_output=True, text=True)
    assert bad.returncode == 1 and "not the document of this proof" in bad.stderr


@pytest.mark.django_db(transaction=True)
def test_two_closers_at_once_build_one_root(farm, on_postgres):
    """Two workers close the same day at the same moment (a redelivered job): one tree, one root, one audit event;
    both get that root."""
    import threading

    from django.db import connection

    issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    barrier, results, errors = threading.Barrier(2), [], []

    def close():
        try:
            barrier.wait(timeout=10)
            results.append(proofs.close_day(yesterday()).root_sha256)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert ProofRoot.objects.count() == 1
    assert AuditEvent.objects.filter(event_type="proof_root.closed").count() == 1
    assert ProofLeaf.objects.filter(kind=Kind.AUDIT_HEAD).count() == 1
    assert verify_chain().ok


def test_credit_note_proof_verifies_its_canonical_json(farm):
    from hashinsight.billing.issuing import credit_note_document, credit_note_issue
    from hashinsight.security.canonical import canonical_json

    invoice = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    note = credit_note_issue(invoice, amount="2.00", reason="meter correction", actor=farm.users["admin"])
    ProofLeaf.objects.filter(root__isnull=True).update(day=yesterday())
    proofs.close_day(yesterday())
    leaf = ProofLeaf.objects.get(kind=Kind.CREDIT_NOTE, object_id=note.pk)
    document = proofs.proof_for(leaf)
    assert document["leaf"]["object"] == {"type": "credit_note", "id": note.pk, "number": note.number}
    data = canonical_json(credit_note_document(note))
    assert hashlib.sha256(data).hexdigest() == note.content_sha256
    assert proofs.verify_document(data, document, stored_root=proofs.stored_root_lookup).ok
    pretty = json.dumps(json.loads(data), indent=2).encode()
    assert proofs.verify_document(pretty, document).ok  # the same content, saved with other spacing
    assert proofs.verify_document(pretty.replace(b"2.00", b"20.00"), document).reason == "document_mismatch"
