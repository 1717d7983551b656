"""Curtailment events, the service: scope kinds, preview figures checked by hand, least-efficient choice within
contract priority (and what emergency changes), batches and staggered command windows at the start, refusals that
change nothing, and who may do what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from commands.models import Command
from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import MinerFactory
from intelligence import curtailment_events as events
from intelligence.models import CurtailmentEvent, CurtailmentEventMiner, ResponseProfile
from intelligence.tests import test_events_support as support
from intelligence.tests.test_events_support import live

pytestmark = pytest.mark.django_db
site, clock = support.site, support.clock  # fixtures


def preview(site, **kw):
    kw.setdefault("site_id", site.site_a.pk)
    return events.event_preview(actor=site.actor, **kw)


def serials(body) -> list[str]:
    return [m["serial"] for m in body["miners"]]


def test_scope_kinds_select_the_sites_active_miners(site):
    a = site.site_a
    every = {m.serial for m in [*site.s19s, site.s21_own, site.s21_x, site.s21_y]}
    assert set(serials(preview(site, mode="full_stop"))) == every
    assert set(serials(preview(site, mode="full_stop", scope={"kind": "site", "ids": [a.pk]}))) == every
    assert set(serials(preview(site, mode="full_stop", scope={"kind": "zone", "ids": [site.zone_a.pk]}))) == every
    rack = preview(site, mode="full_stop", scope={"kind": "rack", "ids": ["R1"]})
    assert set(serials(rack)) == {m.serial for m in site.s19s}
    client = preview(site, mode="full_stop", scope={"kind": "customer", "ids": [site.client_x.pk]})
    assert serials(client) == [site.s21_x.serial]
    listed = preview(site, mode="full_stop", scope={"kind": "miners", "ids": [site.s19s[0].serial, site.s21_y.pk]})
    assert set(serials(listed)) == {site.s19s[0].serial, site.s21_y.serial}
    # Retired miners are never in scope.
    site.s21_y.status = "retired"
    site.s21_y.save()
    assert site.s21_y.serial not in serials(preview(site, mode="full_stop"))


@pytest.mark.parametrize(
    "scope",
    [
        {"kind": "building", "ids": [1]},
        {"kind": "zone", "ids": []},
        {"kind": "zone", "ids": ["A1"]},
        {"kind": "rack", "ids": ["R9"]},
        {"kind": "miners", "ids": ["NOPE"]},
        {"kind": "site", "ids": [999999]},
        {"kind": "zone", "ids": [1], "extra": 1},
        "site",
    ],
)
def test_a_bad_scope_is_a_400_naming_it(site, scope):
    with pytest.raises(DomainError) as exc:
        preview(site, mode="full_stop", scope=scope)
    assert exc.value.status == 400 and exc.value.code == "invalid_scope"
    assert exc.value.details["field"] == "scope"


def test_a_zone_of_another_site_is_not_in_scope(site):
    with pytest.raises(DomainError) as exc:
        preview(site, mode="full_stop", scope={"kind": "zone", "ids": [site.zone_b.pk]})
    assert exc.value.code == "invalid_scope" and exc.value.details["unknown"] == [site.zone_b.pk]


def test_preview_figures_by_hand(site):
    """5 kW from the own miners: the two S19 (34.2 J/TH) before the own S21 (17.5 J/TH): 6.5 kW, 190 TH/s.
    Revenue forgone per hour: 190 TH/s × 0.05 USD/TH/day ÷ 24 = 0.3958… → 0.40 USD; energy 6.5 kWh per hour."""
    body = preview(site, mode="kw_reduction", target_kw=5)
    assert set(serials(body)) == {m.serial for m in site.s19s}
    assert body["shed_kw"] == "6.500" and body["ths"] == "190.000"
    assert body["energy_kwh_per_hour"] == "6.500"
    assert body["revenue_forgone_usd_per_hour"] == "0.40"
    assert body["hashprice_usd_per_th_day"] == "0.050000"
    assert body["available_kw"] == "17.000"  # every miner in scope: clients come after own miners, but count
    assert all(m["source"] == "nominal" for m in body["miners"])
    assert body["restore"] == {"batch_size": 50, "interval_seconds": 60, "batches": 1, "total_seconds": 0}


def test_live_power_counts_before_the_nameplate(site, clock):
    live(site.s19s[0], clock.now, power_w=3600.0, ths=90.0)  # 40 J/TH: worn, the least efficient now
    body = preview(site, mode="kw_reduction", target_kw=3)
    (first,) = body["miners"]
    assert first["serial"] == site.s19s[0].serial and first["kw"] == "3.600" and first["source"] == "live"
    assert first["j_per_th"] == "40.0" and body["shed_kw"] == "3.600" and body["ths"] == "90.000"


def test_contract_priority_then_least_efficient(site):
    # 10 kW: every own miner (6.5 + 3.5); 11 kW reaches a client's S21, the lower id first.
    assert set(serials(preview(site, mode="kw_reduction", target_kw=10))) == {
        *(m.serial for m in site.s19s),
        site.s21_own.serial,
    }
    body = preview(site, mode="kw_reduction", target_kw=11)
    assert site.s21_x.serial in serials(body) and site.s21_y.serial not in serials(body)
    # Client X asked to be curtailed first.
    body = preview(site, mode="kw_reduction", target_kw=3, client_priority={"own": 1, str(site.client_x.pk): 0})
    assert serials(body) == [site.s21_x.serial]


def test_firm_clients_only_in_an_emergency(site):
    firm = {"own": "firm"}
    body = preview(site, mode="kw_reduction", target_kw=5, client_priority=firm)
    assert set(serials(body)) == {site.s21_x.serial, site.s21_y.serial}
    urgent = preview(site, mode="kw_reduction", target_kw=5, client_priority=firm, priority="emergency")
    assert set(serials(urgent)) == {m.serial for m in site.s19s}
    with pytest.raises(DomainError) as exc:
        preview(site, mode="kw_reduction", target_kw=8, client_priority=firm)
    assert exc.value.code == "cannot_shed" and exc.value.details["available_kw"] == "7.000"


def test_emergency_ignores_contract_priority(site):
    late_own = {"own": 5}  # own miners after the clients'
    normal = preview(site, mode="kw_reduction", target_kw=9, client_priority=late_own)
    assert serials(normal)[:2] == [site.s21_x.serial, site.s21_y.serial] and len(serials(normal)) == 3
    # An emergency: least efficient first whatever the contracts; the S21 tie goes to the lowest id.
    urgent = preview(site, mode="kw_reduction", target_kw=9, client_priority=late_own, priority="emergency")
    assert set(serials(urgent)) == {m.serial for m in site.s19s} | {site.s21_x.serial}


def test_more_than_the_scope_can_shed_is_a_400_naming_the_kw(site):
    with pytest.raises(DomainError) as exc:
        preview(site, mode="kw_reduction", target_kw=100)
    assert exc.value.status == 400 and exc.value.code == "cannot_shed"
    assert exc.value.details["available_kw"] == "17.000"


def test_soft_throttles_to_half_the_nameplate(site):
    body = preview(site, mode="kw_reduction", target_kw=1.5, soft=True)
    (s19,) = body["miners"]
    assert s19["shed_kw"] == "1.625" and s19["power_target_w"] == 1625 and body["command_mode"] == "soft"
    # 95 TH/s × 1.625 / 3.25 = 47.5 TH/s given up
    assert body["ths"] == "47.500"


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"mode": "stop"}, "invalid_choice"),
        ({"mode": "kw_reduction"}, "required"),
        ({"mode": "kw_reduction", "target_kw": -1}, "out_of_range"),
        ({"mode": "kw_reduction", "target_kw": "x"}, "invalid"),
        ({"mode": "full_stop", "priority": "urgent"}, "invalid_choice"),
        ({"mode": "full_stop", "soft": True}, "invalid"),
        ({"mode": "full_stop", "client_priority": {"own": 1.5}}, "invalid"),
        ({"mode": "full_stop", "site_id": "a"}, "invalid"),
    ],
)
def test_bad_arguments_are_400s(site, kw, code):
    with pytest.raises(DomainError) as exc:
        preview(site, **kw)
    assert exc.value.status == 400 and exc.value.code == code


def test_start_makes_batches_and_one_command_per_batch_with_staggered_ends(site, clock):
    event = events.event_start(
        actor=site.actor, site_id=site.site_a.pk, mode="full_stop", restore_batch_size=2,
        restore_interval_seconds=90, max_duration_minutes=60, min_duration_minutes=20, reason="grid peak",
    )  # fmt: skip
    assert event.status == "scheduled" and event.starts_at == clock.now
    assert event.max_end_at == clock.now + timedelta(minutes=60) and event.min_end_at == clock.now + timedelta(
        minutes=20
    )
    rows = list(event.miners.order_by("batch", "serial"))
    assert [r.batch for r in rows] == [0, 0, 1, 1, 2]
    # Restore order: the S21 (17.5 J/TH) before the S19 (34.2 J/TH).
    assert {r.serial for r in rows if r.batch == 2} <= {m.serial for m in site.s19s}
    assert rows[0].kw_before == Decimal("3.500") and rows[0].ths_before == Decimal("200")
    commands = list(event.commands.order_by("dedupe_key"))
    assert [c.dedupe_key for c in commands] == [events.batch_key(event.pk, b) for b in range(3)]
    for b, c in enumerate(commands):
        assert c.command_type == "CURTAIL" and c.params["mode"] == "hard" and c.params["percent"] == 100
        end = event.max_end_at + timedelta(seconds=90 * b)
        assert c.params["end"] == end.isoformat().replace("+00:00", "Z")
        assert {t.miner_id for t in c.targets.all()} == {r.miner_id for r in rows if r.batch == b}
        assert c.priority == 5 and c.proposer_kind == "user"
    assert event.shed_kw == Decimal("17.000") and event.preview["miner_count"] == 5


def test_emergency_commands_carry_the_highest_priority(site, clock):
    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", target_kw=3,
                               priority="emergency")  # fmt: skip
    assert [c.priority for c in event.commands.all()] == [9]


def test_profile_defaults_fill_what_is_not_given(site, clock):
    profile = ResponseProfile.objects.create(
        site=site.site_a, name="DR", mode="kw_reduction", target_kw=Decimal(6), min_duration_minutes=30,
        max_duration_minutes=120, restore_batch_size=1, restore_interval_seconds=30, drift_action="flag",
    )  # fmt: skip
    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, profile_id=profile.pk)
    assert event.mode == "kw_reduction" and event.target_kw == Decimal("6.000") and event.drift_action == "flag"
    assert event.max_end_at - event.starts_at == timedelta(minutes=120)
    assert event.miners.count() == 2 and event.commands.count() == 2 and event.profile == profile


def test_refusals_change_nothing(site, clock):
    before = (CurtailmentEvent.objects.count(), CurtailmentEventMiner.objects.count(), Command.objects.count())
    for kw in (
        {"mode": "kw_reduction", "target_kw": 500},
        {"mode": "full_stop", "max_duration_minutes": 0},
        {"mode": "full_stop", "min_duration_minutes": 90, "max_duration_minutes": 60},
        {"mode": "full_stop", "starts_at": "yesterday"},
        {"mode": "full_stop", "starts_at": "9999-12-31T23:59:59-12:00"},
        {"mode": "full_stop", "starts_at": (clock.now - timedelta(hours=1)).isoformat()},
        {"mode": "full_stop", "starts_at": (clock.now + timedelta(days=8)).isoformat()},
        {"mode": "full_stop", "max_duration_minutes": 7 * 24 * 60, "restore_batch_size": 1},
        {"mode": "full_stop", "drift_action": "ignore"},
        {"mode": "full_stop", "restore_interval_seconds": 99999},
    ):
        with pytest.raises(DomainError) as exc:
            events.event_start(actor=site.actor, site_id=site.site_a.pk, **kw)
        assert exc.value.status == 400, kw
    assert (CurtailmentEvent.objects.count(), CurtailmentEventMiner.objects.count(), Command.objects.count()) == before


@pytest.mark.parametrize("who", ["client_x", "customer", "guest"])
def test_roles_without_curtailment_see_nothing_and_start_nothing(site, who):
    user = site.users[who]
    with pytest.raises(DomainError) as exc:
        events.event_preview(actor=user, site_id=site.site_a.pk, mode="full_stop")
    assert exc.value.status == 404
    assert not events.event_list(user=user).exists()


def test_hidden_site_is_404_and_read_only_grant_403(site):
    with pytest.raises(DomainError) as exc:
        events.event_preview(actor=site.actor, site_id=site.site_b.pk, mode="full_stop")
    assert exc.value.status == 404
    MinerFactory(zone=site.zone_b, site=site.site_b)
    with pytest.raises(DomainError) as exc:
        events.event_start(actor=site.users["siteowner_b_ro"], site_id=site.site_b.pk, mode="full_stop")
    assert exc.value.status == 403 and exc.value.code == "site_read_only"


def test_list_get_and_body(site, clock):
    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="full_stop")
    assert list(events.event_list(user=site.actor)) == [event]
    assert not events.event_list(user=site.users["siteowner_b_ro"]).exists()
    with pytest.raises(DomainError) as exc:
        events.event_get(user=site.users["siteowner_b_ro"], event_id=event.pk)
    assert exc.value.status == 404
    body = events.event_body(events.event_get(user=site.users["owner"], event_id=event.pk))
    assert body["miners_summary"] == {"total": 5, "by_state": {"pending": 5}, "batches": 1, "drifts": 0}
    assert body["status"] == "scheduled" and body["can_end"] is True and len(body["commands"]) == 1
    assert body["shed_kw"] == "17.000" and body["starts_at"].endswith("Z")


def test_a_miner_held_by_an_open_event_is_not_taken_again(site, clock):
    first = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", target_kw=3)
    (held,) = first.miners.values_list("serial", flat=True)
    body = preview(site, mode="kw_reduction", target_kw=3)
    assert held not in serials(body) and body["available_kw"] == "13.750"


def test_soft_start_asks_the_control_plane_to_throttle(site, clock):
    event = events.event_start(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", target_kw=1.5,
                               soft=True)  # fmt: skip
    (row,) = event.miners.all()
    assert row.power_target_w == 1625 and row.kw_before == Decimal("3.250")
    (command,) = event.commands.all()
    assert command.params["mode"] == "soft" and Decimal(str(command.params["kw"])) == Decimal("1.625")
    (target,) = command.targets.all()
    assert target.action == {"action": "power_target", "power_w": 1625}
