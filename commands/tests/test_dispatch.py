"""Dispatch to the edge: the poll hands a device only its own site's (zone's) commands, signed, and marks them
DISPATCHED once; the acknowledgement finishes them (COMPLETED / PARTIAL / FAILED), idempotently; another site's
device gets 404; a wrong nonce is refused; expired commands are never sent; two concurrent polls on PostgreSQL
never both dispatch one command."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from commands import dispatch, services
from commands.models import Command, CommandStatus, CommandTarget
from edge.signing import key_from_secret, signature_matches
from hashinsight.events.models import AuditEvent, OutboxEvent
from hashinsight.security.signing import SIGNED_FIELDS
from hashinsight.tests.factories import MinerFactory, ZoneFactory
from telemetry import devices

S = CommandStatus
POLL = "/api/edge/v1/commands/poll"
pytestmark = pytest.mark.django_db


def ack_url(pk) -> str:
    return f"/api/edge/v1/commands/{pk}/ack"


def new_device(site, zone=None, name="collector"):
    _row, code = devices.enrollment_code_create(site=site, zone=zone)
    device, token, secret = devices.device_register(code=code, name=name, version="1.0.0")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return device, client, secret


def propose(farm, miners, *, who="siteowner_a", type="SET_FAN", params=None, **kw):
    return services.command_propose(
        actor=farm.users[who],
        type=type,
        params={"percent": 80} if params is None else params,
        targets=[m.pk for m in miners],
        **kw,
    ).command


@pytest.fixture
def site_a(farm):
    miners = [farm.miners[("site-a", "own")], MinerFactory(zone=farm.zone_a, site=farm.site_a)]
    device, client, secret = new_device(farm.site_a)
    return miners, device, client, secret


def poll(client, wait=0):
    response = client.get(POLL, {"wait": wait})
    assert response.status_code == 200, response.content
    return response.json()["commands"]


def test_poll_returns_own_sites_approved_commands_signed_and_marks_them_dispatched(farm, site_a):
    miners, device, client, secret = site_a
    command = propose(farm, miners)
    assert command.status == S.APPROVED  # LOW: auto-approved
    other = propose(farm, [farm.miners[("site-b", "own")]], who="owner")
    assert other.status == S.APPROVED

    (env,) = poll(client)
    assert set(env) == {*SIGNED_FIELDS, "signature"}
    assert env["command_id"] == command.pk and env["site_id"] == farm.site_a.pk
    assert env["targets"] == [m.serial for m in miners]
    assert env["type"] == "SET_FAN" and env["params"] == {"percent": 80}
    assert signature_matches(env, env["signature"], key_from_secret(secret))
    tampered = {**env, "params": {"percent": 10}}
    assert not signature_matches(tampered, env["signature"], key_from_secret(secret))
    command.refresh_from_db()
    assert command.status == S.DISPATCHED and command.dispatched_at is not None
    assert env["nonce"] == dispatch.dispatch_nonce(command)
    assert OutboxEvent.objects.filter(aggregate=f"command:{command.pk}", payload__status=S.DISPATCHED).exists()
    audit = AuditEvent.objects.get(reference=f"command:{command.pk}", event_type="command.dispatched")
    assert audit.actor_type == "device" and str(audit.actor_id) == str(device.pk)
    # Taken once: the next poll has nothing (redelivery only after REDELIVER_AFTER).
    assert poll(client) == []
    other.refresh_from_db()
    assert other.status == S.APPROVED


def test_an_unacknowledged_dispatch_is_redelivered_with_the_same_nonce(farm, site_a, monkeypatch):
    miners, _device, client, _secret = site_a
    command = propose(farm, miners)
    (first,) = poll(client)
    monkeypatch.setattr(dispatch, "REDELIVER_AFTER", timedelta(0))
    (again,) = poll(client)
    assert again == first  # same nonce, same signed_at: the edge sees a replay and acknowledges again
    command.refresh_from_db()
    assert command.status == S.DISPATCHED


def test_expired_commands_are_never_sent(farm, site_a):
    miners, _device, client, _secret = site_a
    command = propose(farm, miners)
    Command.objects.filter(pk=command.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert poll(client) == []
    command.refresh_from_db()
    assert command.status == S.APPROVED


def test_pending_approval_commands_are_not_sent(farm, site_a):
    miners, _device, client, _secret = site_a
    command = propose(farm, miners, type="MINER_RESTART", params={})
    assert command.status == S.PENDING_APPROVAL
    assert poll(client) == []


def test_a_zone_bound_device_gets_only_commands_within_its_zone(farm, site_a):
    miners, _device, _client, _secret = site_a
    zone2 = ZoneFactory(site=farm.site_a, name="A2")
    elsewhere = MinerFactory(zone=zone2, site=farm.site_a)
    _dev, zoned, _s = new_device(farm.site_a, zone=farm.zone_a, name="zoned")
    spanning = propose(farm, [*miners, elsewhere])
    inside = propose(farm, miners, params={"percent": 70})
    assert [e["command_id"] for e in poll(zoned)] == [inside.pk]
    assert spanning.pk not in [e["command_id"] for e in poll(zoned)]
    # and it cannot acknowledge the spanning one either
    assert zoned.post(ack_url(spanning.pk), {"nonce": "x", "results": []}, format="json").status_code == 404


def ok(serial, status="ok", message="done", **extra):
    return {"miner": serial, "status": status, "message": message, **extra}


def dispatched(farm, site_a, **kw):
    miners, _device, client, _secret = site_a
    command = propose(farm, miners, **kw)
    (env,) = poll(client)
    return command, env, client, miners


def test_ack_all_ok_completes_and_records_results_and_before_state(farm, site_a):
    command, env, client, miners = dispatched(farm, site_a)
    results = [ok(m.serial, before_state={"fan_rpm": 3000}) for m in miners]
    response = client.post(ack_url(command.pk), {"nonce": env["nonce"], "results": results}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"command_id": command.pk, "status": S.COMPLETED, "changed": True}
    command.refresh_from_db()
    assert command.status == S.COMPLETED and command.finished_at is not None
    for target in CommandTarget.objects.filter(command=command):
        assert target.result_status == "ok" and target.acked_at is not None
        assert target.before_state["edge"] == {"fan_rpm": 3000}
    audit = AuditEvent.objects.get(reference=f"command:{command.pk}", event_type="command.completed")
    assert audit.actor_type == "device" and audit.payload["ok"] == 2

    # The same acknowledgement again: 200, nothing changes, no second transition.
    again = client.post(ack_url(command.pk), {"nonce": env["nonce"], "results": results}, format="json")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert AuditEvent.objects.filter(reference=f"command:{command.pk}", event_type="command.completed").count() == 1
    # Other results after the end: 409.
    other = [ok(miners[0].serial), ok(miners[1].serial, "failed")]
    assert client.post(ack_url(command.pk), {"nonce": env["nonce"], "results": other}, format="json").status_code == 409


def test_ack_some_failed_is_partial_and_none_ok_is_failed(farm, site_a):
    command, env, client, miners = dispatched(farm, site_a)
    results = [ok(miners[0].serial), ok(miners[1].serial, "unsupported", "no fan control")]
    assert (
        client.post(ack_url(command.pk), {"nonce": env["nonce"], "results": results}, format="json").json()["status"]
        == S.PARTIAL
    )
    target = CommandTarget.objects.get(command=command, serial=miners[1].serial)
    assert target.result_status == "failed" and target.result_message == "unsupported: no fan control"

    # (another type: a PARTIAL SET_FAN raises the next SET_FAN's risk above LOW at this site)
    second = propose(farm, miners, type="HASHING_ENABLE", params={})
    (env2,) = poll(client)
    # A target the edge did not report counts as failed.
    body = {"nonce": env2["nonce"], "results": [ok(miners[0].serial, "failed", "timeout")]}
    assert client.post(ack_url(second.pk), body, format="json").json()["status"] == S.FAILED
    missing = CommandTarget.objects.get(command=second, serial=miners[1].serial)
    assert missing.result_status == "failed" and "no result" in missing.result_message


def test_wrong_nonce_or_foreign_miner_is_refused(farm, site_a):
    command, env, client, miners = dispatched(farm, site_a)
    results = [ok(m.serial) for m in miners]
    wrong = base64.urlsafe_b64encode(b"x" * 16).rstrip(b"=").decode()
    response = client.post(ack_url(command.pk), {"nonce": wrong, "results": results}, format="json")
    assert response.status_code == 409 and response.json()["error_code"] == "nonce_mismatch"
    foreign = [*results, ok(farm.miners[("site-b", "own")].serial)]
    response = client.post(ack_url(command.pk), {"nonce": env["nonce"], "results": foreign}, format="json")
    assert response.status_code == 400
    command.refresh_from_db()
    assert command.status == S.DISPATCHED


def test_another_sites_device_cannot_poll_or_ack_a_command(farm, site_a):
    command, env, _client, miners = dispatched(farm, site_a)
    _dev_b, client_b, _secret = new_device(farm.site_b, name="collector-b")
    waiting = propose(farm, miners, params={"percent": 55})
    assert poll(client_b) == []
    results = [ok(m.serial) for m in miners]
    for pk in (command.pk, waiting.pk, 999_999):
        response = client_b.post(ack_url(pk), {"nonce": env["nonce"], "results": results}, format="json")
        assert response.status_code == 404
    command.refresh_from_db()
    assert command.status == S.DISPATCHED


def test_a_command_never_dispatched_cannot_be_acknowledged(farm, site_a):
    miners, _device, client, _secret = site_a
    command = propose(farm, miners)
    body = {"nonce": "abc", "results": [ok(m.serial) for m in miners]}
    assert client.post(ack_url(command.pk), body, format="json").status_code == 404


def test_user_credentials_are_not_a_device(farm, site_a, api):
    api.force_authenticate(farm.users["owner"])
    assert api.get(POLL).status_code in (401, 403)


def test_expiry_times_out_a_dispatched_command_and_a_late_ack_is_refused(farm, site_a):
    command, env, client, miners = dispatched(farm, site_a)
    assert services.commands_expire(now=command.expires_at + timedelta(seconds=1)) == 1
    command.refresh_from_db()
    assert command.status == S.TIMEOUT
    body = {"nonce": env["nonce"], "results": [ok(m.serial) for m in miners]}
    assert client.post(ack_url(command.pk), body, format="json").status_code == 409


def test_long_poll_picks_up_a_command_approved_while_waiting(farm, site_a, monkeypatch):
    miners, device, _client, _secret = site_a
    proposed = []
    clock = [0.0]

    def fake_sleep(seconds):
        clock[0] += seconds
        if not proposed:
            proposed.append(propose(farm, miners))

    monkeypatch.setattr(dispatch, "_sleep", fake_sleep)
    monkeypatch.setattr(dispatch, "_monotonic", lambda: clock[0])
    found = dispatch.long_poll(device, wait=25)
    assert [e["command_id"] for e in found] == [proposed[0].pk]
    assert clock[0] == dispatch.CHECK_EVERY
    # With nothing due it gives up after `wait` (capped at 25 s), without a transaction open.
    clock[0] = 0.0
    assert dispatch.long_poll(device, wait=100) == []
    assert clock[0] == pytest.approx(dispatch.MAX_WAIT_S)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL")
def test_two_concurrent_polls_never_dispatch_one_command_twice(farm):
    miners = [farm.miners[("site-a", "own")]]
    device, _client, _secret = new_device(farm.site_a)
    commands = [propose(farm, miners, params={"percent": 40 + i}) for i in range(20)]
    barrier = threading.Barrier(4)
    taken: list[list[int]] = []
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait()
            got = []
            for _ in range(5):
                got += [e["command_id"] for e in dispatch.take(device, limit=3)]
            taken.append(got)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    flat = [pk for got in taken for pk in got]
    assert len(flat) == len(set(flat))  # no command taken by two polls
    leftover = [e["command_id"] for e in dispatch.take(device)]  # any skipped while locked by a neighbour
    assert sorted(flat + leftover) == sorted(c.pk for c in commands)
    assert set(Command.objects.filter(pk__in=flat).values_list("status", flat=True)) == {S.DISPATCHED}
    assert AuditEvent.objects.filter(event_type="command.dispatched").count() == 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite's in-memory test database is never closed")
def test_long_poll_holds_no_connection_while_it_waits(farm, monkeypatch):
    device, _client, _secret = new_device(farm.site_a)
    held = []
    clock = [0.0]

    def fake_sleep(seconds):
        clock[0] += seconds
        held.append(connection.connection is not None)

    monkeypatch.setattr(dispatch, "_sleep", fake_sleep)
    monkeypatch.setattr(dispatch, "_monotonic", lambda: clock[0])
    assert dispatch.long_poll(device, wait=2) == []
    assert held and not any(held)


def test_a_dispatch_is_redelivered_and_acknowledged_only_by_the_device_that_took_it(farm, site_a, monkeypatch):
    miners, device, client, _secret = site_a
    second, other, _s2 = new_device(farm.site_a, name="second")
    command = propose(farm, miners)
    (env,) = poll(client)
    command.refresh_from_db()
    assert command.dispatched_to == device  # recorded on the command, in the dispatch's transaction
    assert list(dispatch.acknowledgeable(second)) == [] and list(dispatch.acknowledgeable(device)) == [command]
    monkeypatch.setattr(dispatch, "REDELIVER_AFTER", timedelta(0))
    assert poll(other) == []  # its own nonce store would run it a second time
    assert [e["command_id"] for e in poll(client)] == [command.pk]
    body = {"nonce": env["nonce"], "results": [ok(m.serial) for m in miners]}
    assert other.post(ack_url(command.pk), body, format="json").status_code == 404
    assert other.post(ack_url(command.pk), {**body, "phase": "restore"}, format="json").status_code == 404
    assert client.post(ack_url(command.pk), body, format="json").status_code == 200
    command.refresh_from_db()
    assert command.status == S.COMPLETED and command.dispatched_to == device


def test_commands_dispatched_before_dispatched_to_existed_get_it_from_their_audit_event(farm, site_a):
    import importlib

    from django.apps import apps

    miners, device, client, _secret = site_a
    command = propose(farm, miners)
    poll(client)
    Command.objects.filter(pk=command.pk).update(dispatched_to=None)  # as before migration 0003
    assert not dispatch.acknowledgeable(device).exists()
    importlib.import_module("commands.migrations.0004_dispatched_to_backfill").backfill(apps, None)
    assert list(dispatch.acknowledgeable(device)) == [command]
