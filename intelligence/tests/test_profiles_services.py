"""Response profiles and demand-response programmes, the services: validation (400 naming the field, nothing
changed), one default per site, permissions (hidden → 404, read-only grant and roles without CURTAILMENT refused),
the programme's secret generated, sealed, opened by ``program_secret`` and never written to the audit chain."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hashinsight.core.errors import DomainError
from hashinsight.events.models import AuditEvent
from intelligence import response_profiles as rp
from intelligence.models import DemandResponseProgram, ResponseProfile

pytestmark = pytest.mark.django_db


def make(farm, user="siteowner_a", site=None, **data):
    body = {"site": (site or farm.site_a).pk, "name": "Normal", **data}
    return rp.profile_create(actor=farm.users[user], data=body)


def refused(fn, code, status=400, field=None):
    with pytest.raises(DomainError) as exc:
        fn()
    assert exc.value.code == code and exc.value.status == status, (exc.value.code, exc.value.message)
    if field:
        assert exc.value.details["field"] == field
    return exc.value


def test_create_with_defaults_and_audit(farm):
    p = make(farm)
    assert p.mode == "full_stop" and p.target_kw is None and p.scope == {} and not p.is_default
    assert p.created_by == farm.users["siteowner_a"]
    assert AuditEvent.objects.filter(event_type="response_profile.created", reference=f"response_profile:{p.pk}")


BAD = [
    ({"min_duration_minutes": 30, "max_duration_minutes": 20}, "min_above_max", "min_duration_minutes"),
    ({"restore_batch_size": 0}, "out_of_range", "restore_batch_size"),
    ({"restore_interval_seconds": -1}, "out_of_range", "restore_interval_seconds"),
    ({"mode": "kw_reduction"}, "required", "target_kw"),
    ({"mode": "kw_reduction", "target_kw": 0}, "not_positive", "target_kw"),
    ({"mode": "kw_reduction", "target_kw": "abc"}, "invalid", "target_kw"),
    ({"mode": "slow"}, "invalid_choice", "mode"),
    ({"priority": "urgent"}, "invalid_choice", "priority"),
    ({"name": "  "}, "required", "name"),
    ({"scope": {"kind": "zone", "ids": []}}, "invalid_scope", "scope"),
    ({"scope": {"kind": "planet", "ids": [1]}}, "invalid_scope", "scope"),
    ({"scope": {"kind": "zone", "ids": ["x"]}}, "invalid_scope", "scope"),
    ({"scope": {"kind": "site", "ids": [1]}}, "invalid_scope", "scope"),
    ({"scope": [1]}, "invalid_scope", "scope"),
    ({"min_duration_minutes": True}, "invalid", "min_duration_minutes"),
    ({"colour": "red"}, "unknown", None),
    ({"name": "a\x00b"}, "invalid", "name"),
    ({"scope": {"kind": "zone", "ids": [2**70]}}, "invalid_scope", "scope"),
    ({"scope": {"kind": "miners", "ids": ["x" * 65]}}, "invalid_scope", "scope"),
]


@pytest.mark.parametrize(("extra", "code", "field"), BAD)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(farm, extra, code, field):
    refused(lambda: make(farm, **extra), code, field=field)
    assert not ResponseProfile.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="response_profile.").exists()


def test_scope_must_belong_to_the_site(farm):
    other_zone = farm.zone_b.pk
    err = refused(lambda: make(farm, scope={"kind": "zone", "ids": [other_zone]}), "invalid_scope", field="scope")
    assert err.details["unknown"] == [other_zone]
    b_serial = farm.miners[("site-b", "own")].serial
    refused(lambda: make(farm, scope={"kind": "miners", "ids": [b_serial]}), "invalid_scope")
    a_serial = farm.miners[("site-a", "own")].serial
    p = make(farm, scope={"kind": "miners", "ids": [a_serial, a_serial]})
    assert p.scope == {"kind": "miners", "ids": [a_serial]}
    q = make(farm, name="Zone", scope={"kind": "zone", "ids": [farm.zone_a.pk]})
    assert q.scope == {"kind": "zone", "ids": [farm.zone_a.pk]}
    c = make(farm, name="Client", scope={"kind": "customer", "ids": [farm.client_x.pk]})
    assert c.scope["ids"] == [farm.client_x.pk]


def test_kw_reduction_keeps_kw_full_stop_drops_it(farm):
    p = make(farm, mode="kw_reduction", target_kw="120.5")
    assert p.target_kw == Decimal("120.500")
    p = rp.profile_update(actor=farm.users["siteowner_a"], profile=p, data={"mode": "full_stop"})
    assert p.target_kw is None


def test_one_default_per_site(farm):
    a = make(farm, is_default=True)
    b = make(farm, name="Emergency", is_default=True)
    a.refresh_from_db()
    assert b.is_default and not a.is_default
    rp.profile_set_default(actor=farm.users["owner"], profile=a)
    b.refresh_from_db()
    a.refresh_from_db()
    assert a.is_default and not b.is_default
    other = make(farm, user="owner", site=farm.site_b, name="B", is_default=True)
    a.refresh_from_db()
    assert a.is_default and other.is_default  # per site
    assert rp.default_profile(farm.site_a) == a


def test_names_unique_per_site(farm):
    make(farm)
    refused(lambda: make(farm), "name_taken", field="name")
    make(farm, user="owner", site=farm.site_b)


def test_update_changes_only_what_it_names_and_site_is_fixed(farm):
    p = make(farm, min_duration_minutes=10, max_duration_minutes=60)
    p = rp.profile_update(actor=farm.users["siteowner_a"], profile=p, data={"max_duration_minutes": 90})
    assert (p.min_duration_minutes, p.max_duration_minutes) == (10, 90)
    refused(lambda: rp.profile_update(actor=farm.users["owner"], profile=p, data={"site": farm.site_b.pk}),
            "immutable", field="site")  # fmt: skip
    refused(lambda: rp.profile_update(actor=farm.users["owner"], profile=p, data={"min_duration_minutes": 100}),
            "min_above_max")  # fmt: skip
    p.refresh_from_db()
    assert p.min_duration_minutes == 10


def test_permissions(farm):
    p = make(farm)
    # Hidden site → 404 (reads and writes).
    refused(lambda: rp.profile_get(user=farm.users["siteowner_b_ro"], profile_id=p.pk), "not_found", 404)
    refused(lambda: make(farm, user="siteowner_b_ro"), "not_found", 404)
    # Read-only grant: sees, may not change.
    b = make(farm, user="owner", site=farm.site_b)
    assert rp.profile_get(user=farm.users["siteowner_b_ro"], profile_id=b.pk) == b
    refused(lambda: make(farm, user="siteowner_b_ro", site=farm.site_b, name="x"), "site_read_only", 403)
    refused(lambda: rp.profile_delete(actor=farm.users["siteowner_b_ro"], profile=b), "site_read_only", 403)
    refused(lambda: rp.profile_set_default(actor=farm.users["siteowner_b_ro"], profile=b), "site_read_only", 403)
    # Clients and customers have no CURTAILMENT: they see nothing and change nothing.
    for user in ("client_x", "customer", "guest"):
        assert not rp.profile_list(user=farm.users[user]).exists()
        assert not rp.program_list(user=farm.users[user]).exists()
        refused(lambda u=user: make(farm, user=u, name="c"), "not_found", 404)


def test_delete_refused_while_a_programme_uses_it(farm):
    p = make(farm)
    data = {"site": farm.site_a.pk, "name": "ERCOT ERS", "profile": p.pk}
    prog, _secret = rp.program_create(actor=farm.users["siteowner_a"], data=data)
    err = refused(lambda: rp.profile_delete(actor=farm.users["siteowner_a"], profile=p), "profile_in_use", 409)
    assert err.details["programs"] == ["ERCOT ERS"]
    rp.program_delete(actor=farm.users["siteowner_a"], program=prog)
    rp.profile_delete(actor=farm.users["siteowner_a"], profile=p)
    assert not ResponseProfile.objects.exists()


def test_programme_secret_is_sealed_opened_and_rotated(farm):
    p = make(farm)
    prog, secret = rp.program_create(actor=farm.users["owner"], data={"site": farm.site_a.pk, "name": "Utility DR",
                                                                      "profile": p.pk})  # fmt: skip
    assert prog.slug == "utility-dr" and len(secret) == 43
    stored = DemandResponseProgram.objects.get(pk=prog.pk)
    assert secret not in stored.secret_sealed and stored.secret_sealed.startswith("hie1.")
    assert rp.program_secret(stored) == secret.encode()
    body = rp.program_body(stored)
    assert secret not in str(body) and body["webhook_url"] == "/api/v1/curtailment/dr/utility-dr"
    _prog2, secret2 = rp.program_rotate(actor=farm.users["owner"], program=stored)
    assert secret2 != secret and rp.program_secret(DemandResponseProgram.objects.get(pk=prog.pk)) == secret2.encode()
    # Never on the audit chain.
    payloads = " ".join(str(e.payload) for e in AuditEvent.objects.filter(event_type__startswith="dr_program."))
    assert "dr_program.rotated" in set(AuditEvent.objects.values_list("event_type", flat=True))
    assert secret not in payloads and secret2 not in payloads


def test_sealed_secret_copied_to_another_programme_does_not_open(farm):
    from hashinsight.security.crypto import DecryptionError

    p = make(farm)
    a, _ = rp.program_create(actor=farm.users["owner"], data={"site": farm.site_a.pk, "name": "A", "profile": p.pk})
    b, _ = rp.program_create(actor=farm.users["owner"], data={"site": farm.site_a.pk, "name": "B", "profile": p.pk})
    b.secret_sealed = a.secret_sealed
    with pytest.raises(DecryptionError):
        rp.program_secret(b)


def test_programme_validation_and_activation(farm):
    p = make(farm)
    pb = make(farm, user="owner", site=farm.site_b, name="B")
    owner = farm.users["owner"]
    refused(lambda: rp.program_create(actor=owner, data={"site": farm.site_a.pk, "name": "X", "profile": pb.pk}),
            "invalid", field="profile")  # fmt: skip
    refused(lambda: rp.program_create(actor=owner, data={"site": farm.site_a.pk, "name": "X"}), "required",
            field="profile")  # fmt: skip
    refused(lambda: rp.program_create(actor=owner, data={"site": farm.site_a.pk, "name": "X", "profile": p.pk,
                                                          "slug": "Bad Slug"}), "invalid", field="slug")  # fmt: skip
    prog, _ = rp.program_create(actor=owner, data={"site": farm.site_a.pk, "name": "X", "profile": p.pk})
    refused(lambda: rp.program_create(actor=owner, data={"site": farm.site_a.pk, "name": "X", "profile": p.pk}),
            "slug_taken", field="slug")  # fmt: skip
    assert DemandResponseProgram.objects.count() == 1
    prog = rp.program_set_active(actor=owner, program=prog, active=False)
    assert not DemandResponseProgram.objects.get(pk=prog.pk).is_active
    refused(lambda: rp.program_update(actor=owner, program=prog, data={"slug": "y"}), "immutable", field="slug")
    refused(lambda: rp.program_get(user=farm.users["siteowner_b_ro"], program_id=prog.pk), "not_found", 404)


def test_ids_no_row_can_have_are_not_found(farm):
    owner = farm.users["owner"]
    for pk in (2**70, "99999999999999999999999", 0):
        refused(lambda pk=pk: rp.profile_get(user=owner, profile_id=pk), "not_found", 404)
        refused(lambda pk=pk: rp.program_get(user=owner, program_id=pk), "not_found", 404)
    refused(lambda: rp.profile_create(actor=owner, data={"site": 2**70, "name": "x"}), "not_found", 404)
