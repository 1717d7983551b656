"""The audit hash chain: appends only inside a transaction, verification names the first broken link
(modified, deleted, reordered), one chain under concurrent writers on PostgreSQL, read-only admin,
owners and admins only in the API and the portal, and the hooks that append."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, models, transaction
from django.urls import reverse

from hashinsight.accounts import services as account_services
from hashinsight.accounts.roles import Role
from hashinsight.events.audit import audit_append, verify_chain
from hashinsight.events.models import GENESIS_HASH, AuditEvent
from hashinsight.security.canonical import canonical_json
from hashinsight.tests.factories import PASSWORD, SiteFactory, UserFactory


def append(n: int = 1, **overrides) -> list[AuditEvent]:
    out = []
    for i in range(n):
        fields = {
            "event_type": "test.happened",
            "actor_type": "system",
            "actor_id": "tests",
            "reference": f"thing:{i}",
            "payload": {
                "i": i,
                "ratio": 0.1,
                "big": 1e20,
                "tiny": 1.5e-7,
                "amount": Decimal("1.10"),
                "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            },
        }
        fields.update(overrides)
        with transaction.atomic():
            out.append(audit_append(**fields))
    return out


def tamper(at: int, **fields) -> None:
    """Change a row behind the ORM's back (the model refuses updates), as someone with SQL access would."""
    models.QuerySet.update(AuditEvent.objects.filter(seq=at), **fields)


def broken(result) -> tuple[int, str]:
    assert not result.ok
    return result.first_broken["seq"], result.first_broken["reason"]


# -- canonical form -------------------------------------------------------------------------------


def test_canonical_json_is_defined_byte_for_byte():
    value = {
        "b": [1, 2.5, 3.0, None, True],
        "a": "中文 é",
        "d": Decimal("1.10"),
        "e": Decimal("1E+2"),
        "t": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2026, 1, 2),
    }
    assert (
        canonical_json(value)
        == (
            '{"a":"中文 é","b":[1,2.5,3,null,true],"d":"1.10","day":"2026-01-02","e":"100",'
            '"t":"2026-01-02T03:04:05.000000Z"}'
        ).encode()
    )
    for bad in (datetime(2026, 1, 1), float("nan"), {1: "x"}, {"s": {1, 2}}):
        with pytest.raises((TypeError, ValueError)):
            canonical_json(bad)


# -- append and verify ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_append_is_refused_outside_a_transaction():
    with pytest.raises(RuntimeError):
        audit_append(event_type="x", actor_type="system", actor_id="", reference="", payload={})
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_chain_links_each_event_to_the_previous_one():
    events = append(3)
    first = AuditEvent.objects.get(seq=1)
    assert first.prev_hash == GENESIS_HASH and first.public_id.startswith("evt_")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].event_hash and events[2].prev_hash == events[1].event_hash
    # The payload is stored in the form that was hashed (decimals and datetimes as strings).
    assert first.payload == {"i": 0, "ratio": 0.1, "big": 10**20, "tiny": 1.5e-7, "amount": "1.10",
                             "at": "2026-01-02T03:04:05.000006Z"}  # fmt: skip
    # The documented formula, recomputed by hand.
    event = {
        "id": first.public_id, "seq": 1, "created_at": first.created_at, "site_id": None, "actor_type": "system",
        "actor_id": "tests", "event_type": "test.happened", "reference": "thing:0", "payload": first.payload,
    }  # fmt: skip
    assert first.event_hash == hashlib.sha256(GENESIS_HASH.encode() + canonical_json(event)).hexdigest()
    result = verify_chain(batch_size=2)  # several batches
    assert (result.ok, result.count, result.head_seq, result.head_hash) == (True, 3, 3, events[2].event_hash)


@pytest.mark.django_db
def test_orm_refuses_to_change_or_delete_events():
    event = append(1)[0]
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(reference="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert verify_chain().ok


@pytest.mark.django_db
def test_modified_payload_is_the_first_broken_event():
    append(5)
    tamper(3, payload={"i": 99})
    assert broken(verify_chain(batch_size=2)) == (3, "hash_mismatch")


@pytest.mark.django_db
def test_modified_event_with_recomputed_hash_breaks_the_next_link():
    append(5)
    tamper(3, event_hash="f" * 64)
    assert broken(verify_chain()) == (3, "hash_mismatch")
    # Even an attacker who recomputes the row's own hash is caught by its successor.
    row = AuditEvent.objects.get(seq=3)
    row.payload = {"i": 99}
    from hashinsight.events.audit import _canonical_of, event_hash

    tamper(3, payload={"i": 99}, event_hash=event_hash(row.prev_hash, _canonical_of(row)))
    assert broken(verify_chain()) == (4, "prev_hash_mismatch")


@pytest.mark.django_db
def test_deleted_events_are_detected():
    append(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_auditevent WHERE seq = 3")
    assert broken(verify_chain()) == (4, "seq_gap")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_auditevent WHERE seq = 1")
    assert broken(verify_chain()) == (2, "genesis_mismatch")


@pytest.mark.django_db
def test_renumbering_after_a_deletion_is_detected():
    append(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_auditevent WHERE seq = 3")
    tamper(4, seq=3)
    tamper(5, seq=4)
    assert broken(verify_chain()) == (3, "prev_hash_mismatch")


@pytest.mark.django_db
def test_swapped_order_is_detected():
    append(5)
    tamper(3, seq=1000)
    tamper(4, seq=3)
    tamper(1000, seq=4)
    assert broken(verify_chain()) == (3, "prev_hash_mismatch")


@pytest.mark.django_db
def test_verify_audit_command():
    append(4)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().startswith("OK 4 events")
    tamper(2, actor_id="someone else")
    err = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    assert exited.value.code == 1
    assert "seq 2" in err.getvalue() and "hash_mismatch" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_chain(on_postgres):
    errors = []
    start = threading.Barrier(8)

    def writer(n):
        try:
            start.wait()
            for i in range(50):
                with transaction.atomic():
                    audit_append(event_type="test.concurrent", actor_type="system", actor_id=str(n),
                                 reference=f"writer:{n}:{i}", payload={"n": n, "i": i})  # fmt: skip
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify_chain(batch_size=64)
    assert (result.ok, result.count) == (True, 400)
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 401))


# -- admin -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_is_read_only_even_for_superusers(client):
    event = append(1)[0]
    client.force_login(UserFactory(role=Role.OWNER, is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:events_auditevent_changelist") + "?q=thing").status_code == 200
    assert client.get(reverse("admin:events_auditevent_change", args=[event.pk])).status_code == 200
    assert (
        client.post(reverse("admin:events_auditevent_change", args=[event.pk]), {"reference": "x"}).status_code == 403
    )
    assert client.post(reverse("admin:events_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:events_auditevent_add")).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).reference == "thing:0" and verify_chain().ok


@pytest.mark.django_db
def test_admin_hidden_from_site_owners(client):
    append(1)
    client.force_login(UserFactory(role=Role.MINING_SITE_OWNER, is_staff=True))
    assert client.get(reverse("admin:events_auditevent_changelist")).status_code == 403


# -- API and page --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_lists_filters_and_pages(api, farm):
    site = farm.site_a
    append(3, site=site, event_type="command.approved", reference="command:12")
    api.force_authenticate(farm.users["admin"])
    page = api.get("/api/v1/audit", {"site": site.pk, "event_type": "command.approved", "limit": 2}).json()
    assert [r["seq"] for r in page["results"]] == sorted((r["seq"] for r in page["results"]), reverse=True)
    assert len(page["results"]) == 2 and page["next_cursor"] == page["results"][-1]["seq"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next_cursor"] is None
    assert {r["reference"] for r in page["results"] + rest["results"]} == {"command:12"}
    assert api.get("/api/v1/audit", {"actor_type": "user"}).json()["results"] == []
    assert api.get("/api/v1/audit", {"from": "2999-01-01"}).json()["results"] == []
    assert api.get("/api/v1/audit", {"from": "yesterday"}).status_code == 400
    csv = api.get("/api/v1/audit", {"reference": "command:12", "format": "csv"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    body = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert body.count("command:12") == 3 and "Sequence" in body.splitlines()[0]


@pytest.mark.django_db
@pytest.mark.parametrize(("param", "raw"), [("to", "2026-13-45"), ("from", "2026-11-25T25:00:00Z"), ("to", "soon")])
def test_api_refuses_dates_that_do_not_exist_with_a_400(api, farm, param, raw):
    api.force_authenticate(farm.users["admin"])
    response = api.get("/api/v1/audit", {param: raw})
    assert response.status_code == 400
    assert param in response.json()["details"]


@pytest.mark.django_db
def test_api_verify(api, farm):
    api.force_authenticate(farm.users["owner"])
    answer = api.get("/api/v1/audit/verify").json()
    assert answer["ok"] is True and answer["count"] == AuditEvent.objects.count() >= 4


@pytest.mark.django_db
def test_api_verify_names_the_broken_event(api, farm):
    tamper(2, payload={"forged": True})
    api.force_authenticate(farm.users["owner"])
    answer = api.get("/api/v1/audit/verify").json()
    assert answer["ok"] is False and answer["first_broken"]["seq"] == 2
    assert answer["first_broken"]["reason"] == "hash_mismatch"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["siteowner_a", "client_x", "customer", "guest"])
def test_api_and_page_refuse_everyone_but_owners_and_admins(api, client, farm, who):
    user = farm.users[who]
    api.force_authenticate(user)
    assert api.get("/api/v1/audit").status_code == 403
    assert api.get("/api/v1/audit/verify").status_code == 403
    client.force_login(user)
    assert client.get(reverse("portal:audit-list")).status_code == 403
    assert reverse("portal:audit-list") not in client.get(reverse("portal:calculator")).content.decode()


@pytest.mark.django_db
def test_anonymous_is_refused(api, client):
    assert api.get("/api/v1/audit").status_code in (401, 403)
    assert client.get(reverse("portal:audit-list")).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_page_lists_filters_exports_and_verifies(client, farm, who):
    append(2, event_type="command.approved", reference="command:7", site=farm.site_b)
    client.force_login(farm.users[who])
    url = reverse("portal:audit-list")
    page = client.get(url, {"event_type": "command.approved", "sort": "seq"})
    html = page.content.decode()
    assert page.status_code == 200 and html.count('data-testid="audit-row"') == 2 and "command:7" in html
    assert url in client.get(reverse("portal:calculator")).content.decode()  # the nav link
    assert client.get(url, {"q": "command:7"}).content.decode().count('data-testid="audit-row"') == 2
    export = client.get(url, {"event_type": "command.approved", "format": "csv"})
    assert b"".join(export.streaming_content).decode("utf-8-sig").count("command:7") == 2
    verified = client.get(url, {"verify": "1"}).content.decode()
    assert 'data-testid="audit-verify-result"' in verified and "alert-success" in verified
    # The date filters show their labels (a date input has no placeholder to say which end it is).
    assert html.count('data-testid="filter-date-label"') == 2 and "From (UTC date)" in html


# -- hooks -----------------------------------------------------------------------------------------------


def events(event_type):
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


@pytest.mark.django_db
def test_grant_changes_are_audited(farm):
    from sites import services as site_services

    granted = events("site.access_changed")
    assert [(e.reference, e.site_id, e.actor_type) for e in granted] == [
        (f"site:{farm.site_a.pk}", farm.site_a.pk, "system"),
        (f"site:{farm.site_b.pk}", farm.site_b.pk, "system"),
    ]
    owner = farm.users["owner"]
    site_services.site_set_access(site=farm.site_a, grants={farm.users["siteowner_a"].pk: set()}, actor=owner)
    last = events("site.access_changed")[-1]
    assert (last.actor_type, last.actor_id) == ("user", str(owner.pk))
    assert last.payload["added"] == [] and {r["codename"] for r in last.payload["removed"]} == {
        "view_site", "change_site"}  # fmt: skip
    site_services.customer_set_access(customer=farm.client_x, grants={farm.users["client_x"].pk: set()}, actor=owner)
    last = events("customer.access_changed")[-1]
    assert (last.reference, last.site_id) == (f"customer:{farm.client_x.pk}", None)
    assert verify_chain().ok


@pytest.mark.django_db
def test_failed_grant_change_leaves_no_event(farm):
    from hashinsight.core.errors import DomainError
    from sites import services as site_services

    before = AuditEvent.objects.count()
    with pytest.raises(DomainError):
        site_services.site_set_access(
            site=farm.site_a, grants={farm.users["client_x"].pk: {"view_site"}}, actor=farm.users["owner"]
        )
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_token_and_role_changes_are_audited(farm):
    user = farm.users["customer"]
    token, _secret = account_services.api_token_create(user=user, name="ci")
    created = events("api_token.created")[-1]
    assert (created.reference, created.actor_id, created.payload["prefix"]) == (
        f"api_token:{token.pk}", str(user.pk), token.prefix)  # fmt: skip
    assert "secret" not in str(created.payload) and _secret not in str(created.payload)
    account_services.api_token_revoke(token=token, actor=user)
    assert events("api_token.revoked")[-1].reference == f"api_token:{token.pk}"
    admin = farm.users["admin"]
    account_services.user_update(actor=admin, user=user, role=Role.CLIENT)
    changed = events("user.role_changed")[-1]
    assert changed.payload == {"user_id": user.pk, "old_role": "CUSTOMER", "new_role": "CLIENT"}
    assert (changed.actor_type, changed.actor_id) == ("user", str(admin.pk))
    assert verify_chain().ok


@pytest.mark.django_db
def test_failed_sign_in_is_audited_without_the_password(client):
    UserFactory(username="victim", role=Role.OWNER)
    response = client.post(reverse("login"), {"username": "victim", "password": "wrong-" + PASSWORD})
    assert response.status_code == 200  # the form again, with its error
    failed = events("auth.login_failed")
    assert len(failed) == 1 and failed[0].reference == "login:victim" and failed[0].actor_type == "system"
    assert failed[0].payload["username"] == "victim" and "wrong-" not in str(failed[0].payload)
    assert client.post(reverse("login"), {"username": "victim", "password": PASSWORD}).status_code == 302
    assert len(events("auth.login_failed")) == 1


@pytest.mark.django_db
def test_edge_device_credentials_are_audited():
    from telemetry import devices

    site = SiteFactory()
    _code, shown = devices.enrollment_code_create(site=site)
    device, _token, _secret = devices.device_register(code=shown, name="collector", version="1.0")
    devices.device_rotate(device=device)
    devices.device_revoke(device=device)
    kinds = [(e.event_type, e.actor_type, e.site_id) for e in AuditEvent.objects.order_by("seq")]
    assert kinds == [
        ("edge_device.registered", "device", site.pk),
        ("edge_device.rotated", "system", site.pk),
        ("edge_device.revoked", "system", site.pk),
    ]


@pytest.mark.django_db
def test_deleting_an_audited_site_keeps_its_events_intact(client, farm):
    from sites import services as site_services

    owner = farm.users["owner"]
    site = site_services.site_create(actor=owner, name="Short-lived", slug="short-lived", capacity_kw=Decimal("10"))
    append(1, site=site, reference=f"site:{site.pk}")
    site_services.site_delete(site=site, actor=owner)
    event = AuditEvent.objects.get(reference=f"site:{site.pk}")
    assert event.site_id == site.pk and verify_chain().ok
    client.force_login(owner)
    html = client.get(reverse("portal:audit-list"), {"q": f"site:{site.pk}"}).content.decode()
    assert f"#{site.pk}" in html
    assert client.get(reverse("admin:events_auditevent_change", args=[event.pk])).status_code == 200  # no site: "-"
