"""commands.verification: acknowledged commands verified from the telemetry ingest stores (each type verified and
not seen), only telemetry newer than the acknowledgement, the window, idempotent re-runs, one alert per miner
through the outbox, the audit chain still verifies, the job's cheap idle path, the selectors, the ingest hook.
Telemetry goes in through the real ingest path (telemetry.ingest.validate_samples + ingest_store.store_batch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commands import dispatch, services, verification
from commands.models import Command, CommandStatus, CommandTarget
from commands.selectors import command_verification, command_verification_counts
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import verify_chain
from hashinsight.events.models import AuditEvent, JobRun, OutboxEvent
from hashinsight.tests.factories import MinerFactory
from telemetry import devices
from telemetry.ingest import validate_samples
from telemetry.ingest_store import store_batch
from telemetry.models import Alert

pytestmark = pytest.mark.django_db
S = CommandStatus
CURTAIL_END = "2026-11-27T06:00:00Z"


@pytest.fixture(autouse=True)
def _fast_windows(settings):
    settings.COMMAND_VERIFY_POLL_INTERVAL_S = 10.0  # windows: the per-type floors (60 s for most types)
    settings.COMMAND_VERIFY_WINDOW_S = {}


@pytest.fixture
def device(farm):
    _row, code = devices.enrollment_code_create(site=farm.site_a)
    device, _token, _secret = devices.device_register(code=code, name="collector", version="1.0.0")
    return device


@pytest.fixture
def miners(farm):
    return [farm.miners[("site-a", "own")], MinerFactory(zone=farm.zone_a, site=farm.site_a)]


def run(command_type, farm, device, miners, params=None, results=None, before=None) -> Command:
    """Propose, approve as needed, dispatch to ``device`` and acknowledge: a command as the edge leaves it."""
    command = services.command_propose(
        actor=farm.users["siteowner_a"], type=command_type, params=params or {}, targets=[m.pk for m in miners]
    ).command
    for who in ("owner", "admin"):
        if command.status == S.PENDING_APPROVAL:
            command = services.command_approve(command=command, actor=farm.users[who])
    assert command.status == S.APPROVED
    services.command_mark_dispatched(command=command, device=device)
    command.refresh_from_db()
    results = results or [
        {"miner": m.serial, "status": "ok", "message": "done", **({"before_state": before} if before else {})}
        for m in miners
    ]
    command, _ = services.command_acknowledge(
        command_id=command.pk,
        device=device,
        nonce=dispatch.dispatch_nonce(command),
        results=results,
        visible=dispatch.device_commands(device),
    )
    return command


def acked_at(command) -> datetime:
    return CommandTarget.objects.filter(command=command).values_list("acked_at", flat=True).first()


def ingest(device, miner, ts: datetime, **fields):
    """One sample through the real ingest path (validation, raw, live, telemetry.ingested)."""
    sample = {
        "miner": miner.serial,
        "ts": ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "status": "hashing",
        "hashrate_ths": 201.0,
        "power_w": 3550.0,
        "fan_rpm": [4000, 4100, 4000, 4100],
        "accepted_shares": 900,
        **fields,
    }
    validated = validate_samples([sample], {miner.serial: (miner.pk, miner.customer_id)}, timezone.now())
    assert not validated.rejected, validated.rejected
    store_batch(site_id=miner.site_id, device_id=device.pk, validated=validated)


def targets(command) -> list[tuple[str, str]]:
    return list(CommandTarget.objects.filter(command=command).order_by("pk").values_list("serial", "verification"))


def verify(now=None, **kw) -> dict:
    return verification.commands_verify(now=now, **kw)


IDLE = {"status": "idle", "hashrate_ths": 0.0, "power_w": 105.0}
STILL = {}  # the defaults: hashing at 201 TH/s, 3,550 W
# type, params, before (the edge's reading), what shows the effect, what does not
CASES = [
    ("HASHING_DISABLE", {}, None, IDLE, STILL),
    ("HASHING_ENABLE", {}, None, STILL, IDLE),
    ("POOL_SET", {"url": "stratum+tcp://new.example:3333", "worker": "farm.1"}, None,
     {"pool_url": "stratum+tcp://new.example:3333"}, {"pool_url": "stratum+tcp://old.example:3333"}),
    ("SET_FAN", {"percent": 85}, None, {"fan_pct": 85}, {"fan_pct": 60}),
    ("SET_FAN", {"percent": 85}, {"fan_rpm": [4000, 4100], "fan_percent": 60}, {"fan_rpm": [5600, 5700, 5600, 5700]},
     STILL),
    ("POWER_MODE", {"mode": "low"}, None, {"power_mode": "low"}, {"power_mode": "normal"}),
    ("POWER_MODE", {"mode": "low"}, {"power_w": 3550, "power_mode": "normal"}, {"power_w": 2480.0}, STILL),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "params", "before", "shows", "misses"), CASES)
def test_each_type_is_verified_from_telemetry_after_the_ack_or_not_seen_when_the_window_closes(
    farm, device, miners, kind, params, before, shows, misses
):
    command = run(kind, farm, device, miners, params=params, before=before)
    assert command.verification == ""  # the acknowledgement leaves it to the job
    ack = acked_at(command)
    good, bad = miners
    ingest(device, good, ack + timedelta(seconds=5), **misses)
    ingest(device, good, ack + timedelta(seconds=10), **shows)
    ingest(device, bad, ack + timedelta(seconds=10), **misses)

    verify(now=ack + timedelta(seconds=11))
    assert targets(command) == [(good.serial, "verified"), (bad.serial, "pending")]
    command.refresh_from_db()
    assert command.verification == "pending"

    window = verification.window_for(kind)
    verify(now=ack + timedelta(seconds=window + 1))
    assert targets(command) == [(good.serial, "verified"), (bad.serial, "not_seen")]
    command.refresh_from_db()
    assert command.verification == "partial"
    good_target = CommandTarget.objects.get(command=command, miner=good)
    assert good_target.verified_at == ack + timedelta(seconds=10) and good_target.verification_detail
    alert = Alert.objects.get(alert_type=verification.ALERT_TYPE)
    assert alert.miner_id == bad.pk and alert.site_id == farm.site_a.pk and alert.customer_id is None
    assert alert.evidence["command_id"] == command.pk and f"#{command.pk}" in alert.message


def test_a_curtailment_is_verified_per_target_action(farm, device, miners):
    command = run(
        "CURTAIL", farm, device, miners,
        params={"kw": 3, "start": timezone.now().isoformat(), "end": CURTAIL_END, "mode": "soft"},
    )  # fmt: skip
    stop, throttle = CommandTarget.objects.filter(command=command).order_by("pk")
    CommandTarget.objects.filter(pk=stop.pk).update(action={"action": "stop", "power_w": None})
    CommandTarget.objects.filter(pk=throttle.pk).update(action={"action": "power_target", "power_w": 2500})
    ack = acked_at(command)
    ingest(device, miners[0], ack + timedelta(seconds=5), status="idle", hashrate_ths=0.0, power_w=100.0)
    ingest(device, miners[1], ack + timedelta(seconds=5), power_w=2900.0)
    verify(now=ack + timedelta(seconds=6))
    assert targets(command) == [(miners[0].serial, "verified"), (miners[1].serial, "pending")]
    ingest(device, miners[1], ack + timedelta(seconds=15), power_w=2550.0)
    verify(now=ack + timedelta(seconds=16))
    assert targets(command) == [(miners[0].serial, "verified"), (miners[1].serial, "verified")]
    command.refresh_from_db()
    assert command.verification == "verified"


def test_a_restart_is_verified_from_the_raw_samples_between_two_runs(farm, device, miners):
    command = run("MINER_RESTART", farm, device, miners[:1])
    ack = acked_at(command)
    miner = miners[0]
    ingest(device, miner, ack - timedelta(seconds=5), accepted_shares=900)
    ingest(device, miner, ack + timedelta(seconds=5), status="offline", hashrate_ths=None, power_w=None,
           fan_rpm=None, accepted_shares=None)  # fmt: skip
    ingest(device, miner, ack + timedelta(seconds=25), accepted_shares=4)
    # Only the latest sample is live (hashing, as before the restart): the down is in the raw layer only.
    verify(now=ack + timedelta(seconds=26))
    assert targets(command) == [(miner.serial, "verified")]
    assert "went down" in CommandTarget.objects.get(command=command).verification_detail


def test_a_restart_with_no_down_is_not_seen(farm, device, miners):
    command = run("MINER_RESTART", farm, device, miners[:1])
    ack = acked_at(command)
    ingest(device, miners[0], ack + timedelta(seconds=5), accepted_shares=950)
    verify(now=ack + timedelta(seconds=verification.window_for("MINER_RESTART") + 1))
    assert targets(command) == [(miners[0].serial, "not_seen")]


def test_only_telemetry_newer_than_the_ack_counts(farm, device, miners):
    command = run("HASHING_DISABLE", farm, device, miners[:1])
    ack = acked_at(command)
    # Idle already before the acknowledgement (an older sample arriving late changes nothing).
    ingest(device, miners[0], ack - timedelta(seconds=1), **IDLE)
    verify(now=ack + timedelta(seconds=30))
    assert targets(command) == [(miners[0].serial, "pending")]
    verify(now=ack + timedelta(seconds=61))
    assert targets(command) == [(miners[0].serial, "not_seen")]
    assert "no telemetry" in CommandTarget.objects.get(command=command).verification_detail


def test_an_effect_seen_between_two_runs_counts_when_the_window_closes(farm, device, miners):
    command = run("HASHING_DISABLE", farm, device, miners[:1])
    ack = acked_at(command)
    ingest(device, miners[0], ack + timedelta(seconds=10), **IDLE)
    ingest(device, miners[0], ack + timedelta(seconds=20))  # hashing again (someone re-enabled it)
    verify(now=ack + timedelta(seconds=61))  # the first run only after the window: the raw layer still shows it
    assert targets(command) == [(miners[0].serial, "verified")]


def test_the_window_follows_the_setting_and_the_devices_reported_poll_interval(farm, device, miners, settings):
    settings.COMMAND_VERIFY_POLL_INTERVAL_S = 60.0
    assert verification.window_for("HASHING_DISABLE") == 180
    assert verification.window_for("HASHING_DISABLE", {"poll_interval_s": 30}) == 90
    assert verification.window_for("HASHING_DISABLE", {"poll_interval_s": True}) == 180
    settings.COMMAND_VERIFY_WINDOW_S = {"HASHING_DISABLE": "45", "NOPE": 3, "SET_FAN": -1}
    assert verification.window_for("HASHING_DISABLE") == 45
    assert verification.window_for("SET_FAN") == 180
    command = run("HASHING_DISABLE", farm, device, miners[:1])
    ack = acked_at(command)
    verify(now=ack + timedelta(seconds=44))
    assert targets(command) == [(miners[0].serial, "pending")]
    verify(now=ack + timedelta(seconds=45))
    assert targets(command) == [(miners[0].serial, "not_seen")]


def test_failed_targets_are_not_applicable_and_a_failed_command_is_not_applicable(farm, device, miners):
    results = [
        {"miner": miners[0].serial, "status": "ok", "message": "done"},
        {"miner": miners[1].serial, "status": "unsupported", "message": "no fan control"},
    ]
    partial = run("SET_FAN", farm, device, miners, params={"percent": 70}, results=results)
    assert partial.status == S.PARTIAL
    ack = acked_at(partial)
    ingest(device, miners[0], ack + timedelta(seconds=5), fan_pct=70)
    verify(now=ack + timedelta(seconds=6))
    assert targets(partial) == [(miners[0].serial, "verified"), (miners[1].serial, "n/a")]
    partial.refresh_from_db()
    assert partial.verification == "verified"
    assert "unsupported" in CommandTarget.objects.get(command=partial, miner=miners[1]).verification_detail

    failed = run(
        "SET_FAN", farm, device, miners, params={"percent": 60},
        results=[{"miner": m.serial, "status": "failed", "message": "timeout"} for m in miners],
    )  # fmt: skip
    assert failed.status == S.FAILED
    verify()
    failed.refresh_from_db()
    assert failed.verification == "n/a"
    assert AuditEvent.objects.filter(
        reference=f"command:{failed.pk}", event_type="command.verification_not_applicable"
    ).exists()
    assert not Alert.objects.exists()


def test_re_runs_change_nothing_and_the_alert_is_raised_once_through_the_outbox(farm, device, miners):
    command = run("HASHING_DISABLE", farm, device, miners[:1])
    ack = acked_at(command)
    ingest(device, miners[0], ack + timedelta(seconds=5))
    later = ack + timedelta(seconds=61)
    first = verify(now=later)
    assert first["not_seen"] == 1 and first["alerts"] == 1 and first["commands"] == 1
    events = OutboxEvent.objects.count()
    audits = AuditEvent.objects.count()
    for _ in range(3):
        assert verify(now=later + timedelta(seconds=30))["commands"] == 0
    assert OutboxEvent.objects.count() == events and AuditEvent.objects.count() == audits
    alert = Alert.objects.get(alert_type=verification.ALERT_TYPE, miner=miners[0])
    assert alert.count == 1
    raised = OutboxEvent.objects.filter(event_type="alert.raised", aggregate=f"alert:{alert.pk}")
    assert raised.count() == 1 and raised.get().payload["alert_type"] == verification.ALERT_TYPE
    updated = OutboxEvent.objects.filter(event_type="command.updated", aggregate=f"command:{command.pk}")
    assert updated.filter(payload__status=S.COMPLETED).count() >= 2  # the ack, then the verification
    assert (
        list(
            AuditEvent.objects.filter(reference=f"command:{command.pk}")
            .order_by("seq")
            .values_list("event_type", flat=True)
        )[-1]
        == "command.effect_not_seen"
    )

    # A second command not seen on the same miner counts onto the miner's open alert: one alert per miner.
    again = run("HASHING_DISABLE", farm, device, miners[:1])
    verify(now=acked_at(again) + timedelta(seconds=61))
    alert.refresh_from_db()
    assert Alert.objects.filter(alert_type=verification.ALERT_TYPE).count() == 1 and alert.count == 2
    assert verify_chain().ok


def test_verified_commands_are_audited_and_the_chain_verifies(farm, device, miners):
    command = run("SET_FAN", farm, device, miners, params={"percent": 90})
    ack = acked_at(command)
    for m in miners:
        ingest(device, m, ack + timedelta(seconds=3), fan_pct=90)
    result = verify(now=ack + timedelta(seconds=4))
    assert result == {"commands": 1, "targets": 2, "verified": 2, "not_seen": 0, "not_applicable": 0, "alerts": 0}
    event = AuditEvent.objects.filter(reference=f"command:{command.pk}").order_by("seq").last()
    assert event.event_type == "command.verified" and event.actor_type == "system"
    assert event.payload["verification"] == "verified" and event.payload["counts"] == {"verified": 2}
    chain = verify_chain()
    assert chain.ok, chain


def test_a_command_too_old_for_the_raw_layer_is_not_applicable_without_an_alert(farm, device, miners, settings):
    command = run("HASHING_DISABLE", farm, device, miners[:1])
    ack = acked_at(command)
    settings.TELEMETRY_RAW_RETENTION_HOURS = 1
    # Still inside the candidates (it expires later), but acknowledged before the oldest sample kept.
    Command.objects.filter(pk=command.pk).update(expires_at=ack + timedelta(hours=2))
    verify(now=ack + timedelta(hours=1, seconds=30))
    assert targets(command) == [(miners[0].serial, "n/a")]
    assert not Alert.objects.exists()


def test_nothing_waiting_costs_one_query_and_no_job_record(farm, device, miners):
    from commands.tasks import verify as verify_task

    with CaptureQueriesContext(connection) as queries:
        assert verify_task.apply().get() == {"commands": 0}
    assert len(queries) == 1
    assert not JobRun.objects.filter(job_type="commands_verify").exists()

    command = run("SET_FAN", farm, device, miners, params={"percent": 75})
    ack = acked_at(command)
    for m in miners:
        ingest(device, m, ack + timedelta(seconds=1), fan_pct=75)
    result = verify_task.apply().get()
    assert result["verified"] == 2
    run_row = JobRun.objects.get(job_type="commands_verify")
    assert run_row.status == "success" and run_row.succeeded == 2


def test_queries_do_not_grow_with_the_number_of_targets(farm, device):
    def queries_for(count: int) -> int:
        ms = [MinerFactory(zone=farm.zone_a, site=farm.site_a) for _ in range(count)]
        command = run("SET_FAN", farm, device, ms, params={"percent": 66})
        ack = acked_at(command)
        for m in ms:
            ingest(device, m, ack + timedelta(seconds=1), fan_pct=66)
        with CaptureQueriesContext(connection) as queries:
            assert verify(now=ack + timedelta(seconds=2))["verified"] == count
        return len(queries)

    assert queries_for(2) == queries_for(12)


def test_the_selectors_show_per_target_verification_within_scope(farm, device, miners):
    command = run("SET_FAN", farm, device, miners, params={"percent": 55})
    ack = acked_at(command)
    ingest(device, miners[0], ack + timedelta(seconds=2), fan_pct=55)
    verify(now=ack + timedelta(seconds=3))
    shown = command_verification(user=farm.users["siteowner_a"], command_id=command.pk)
    assert shown["verification"] == "pending" and shown["counts"] == {"verified": 1, "pending": 1}
    assert shown["window_s"] == 60 and shown["window_ends_at"] == ack + timedelta(seconds=60)
    assert [(t["serial"], t["verification"]) for t in shown["targets"]] == targets(command)
    assert shown["targets"][0]["verified_at"] == ack + timedelta(seconds=2)
    for who in ("client_x", "siteowner_b_ro"):
        with pytest.raises(DomainError) as caught:
            command_verification(user=farm.users[who], command_id=command.pk)
        assert caught.value.status == 404
    assert command_verification_counts([command.pk]) == {command.pk: {"verified": 1, "pending": 1}}


def test_the_ingest_hook_verifies_the_reporting_miners_targets_at_once(farm, device, miners):
    from hashinsight.events.contracts import TelemetryIngested

    command = run("SET_FAN", farm, device, miners[:1], params={"percent": 95})
    verify()  # initialised: pending
    ingest(device, miners[0], acked_at(command) + timedelta(seconds=1), fan_pct=95)
    event = OutboxEvent.objects.filter(event_type="telemetry.ingested").order_by("created_at").last()
    assert event.payload["miner_ids"] == [miners[0].pk]

    def hook(**change):
        verification.verify_ingested([(TelemetryIngested(**{**event.payload, **change}), event)])

    hook(site_id=farm.site_b.pk)
    assert targets(command) == [(miners[0].serial, "pending")]  # another site's telemetry: not looked at
    hook(miner_ids=[miners[1].pk])
    assert targets(command) == [(miners[0].serial, "pending")]  # another miner of the site: not decided
    hook()
    assert targets(command) == [(miners[0].serial, "verified")]


def test_a_command_whose_targets_were_settled_elsewhere_is_summed_and_not_picked_up_again(farm, device, miners):
    command = run("SET_FAN", farm, device, miners, params={"percent": 50})
    CommandTarget.objects.filter(command=command).update(verification="verified")
    Command.objects.filter(pk=command.pk).update(verification="pending")
    assert verification.verification_due()
    verify()
    command.refresh_from_db()
    assert command.verification == "verified" and not verification.verification_due()


def test_the_alert_type_has_a_label():
    from telemetry.alert_types import alert_type_label

    assert alert_type_label(verification.ALERT_TYPE) == "Command effect not seen"


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_decide_a_command_once_on_postgres(on_postgres, farm, device, miners):
    """The schedule and the ingest hook at the same moment: SKIP LOCKED lets one decide, the other finds nothing
    (a plain TestCase would hide it: both runs here commit on their own connections)."""
    import threading

    from django.db import connections

    commands = [run("HASHING_DISABLE", farm, device, [m]) for m in miners]
    later = max(acked_at(c) for c in commands) + timedelta(seconds=61)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def one():
        try:
            barrier.wait(timeout=10)
            results.append(verify(now=later))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sum(r["not_seen"] for r in results) == 2  # each target decided once, by one run or the other
    assert sum(r["alerts"] for r in results) == 2
    assert sorted(Alert.objects.filter(alert_type=verification.ALERT_TYPE).values_list("count", flat=True)) == [1, 1]
    for command in commands:
        assert (
            AuditEvent.objects.filter(reference=f"command:{command.pk}", event_type="command.effect_not_seen").count()
            == 1
        )
    assert verify_chain().ok


def test_the_ingest_hook_is_registered():
    from hashinsight.events.registry import handlers_for

    assert "commands.verification.verify_ingested" in [h.name for h in handlers_for("telemetry.ingested")]
