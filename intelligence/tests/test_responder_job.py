"""The real-time responder job on a moving clock: once per new price interval, curtailing the least efficient
miners through CURTAIL commands and restoring its own through cancel / HASHING_ENABLE, within min on/off and
the ramp limit; a disabled site is left alone and one site's error does not stop the others."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commands.models import Command, CommandStatus, ProposerKind
from hashinsight.tests.factories import MinerFactory, MinerModelFactory
from intelligence import curtailment_plans as plans
from intelligence import responder
from intelligence.algorithms import optimizer
from intelligence.models import MarketDay, PowerPrice, RealtimeResponder, ResponderDecision

pytestmark = pytest.mark.django_db
STEP = timedelta(minutes=15)


@pytest.fixture
def site(farm):
    MarketDay.objects.create(
        date=date(2025, 11, 1), btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"),
        fees_btc=Decimal("4.5"),
    )  # fmt: skip
    s19 = MinerModelFactory(code="antminer-s19-95t", name="Antminer S19", hashrate_ths=Decimal(95), power_w=3250)
    farm.s19s = [MinerFactory(zone=farm.zone_a, site=farm.site_a, model=s19) for _ in range(4)]
    farm.s19 = s19
    hp, _ = plans.market_hashprice()
    farm.be19 = optimizer.breakeven_usd_per_mwh(95, 3.25, hp)
    farm.be21 = optimizer.breakeven_usd_per_mwh(200, 3.5, hp)
    farm.g19 = plans.group_id(s19.pk, farm.zone_a.pk, None)
    # The clock: the interval boundary just before now; prices are published for intervals before it.
    now = timezone.now().astimezone(UTC)
    farm.t0 = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    return farm


def enable(site, **settings):
    data = {"enabled": True, "min_on_minutes": 0, "min_off_minutes": 0, **settings}
    return responder.responder_update(actor=site.users["owner"], site_id=site.site_a.pk, data=data)


def price(site, start: datetime, value: float, s=None) -> None:
    PowerPrice.objects.create(site=s or site.site_a, market="real_time", interval_start=start, interval_minutes=15,
                              usd_per_mwh=Decimal(str(round(value, 2))), source="test")  # fmt: skip


def history(site, until: datetime, value: float, n: int = 8, s=None) -> None:
    for k in range(n, 0, -1):
        price(site, until - k * STEP, value, s)


def at(site, k: int) -> datetime:
    """A minute after interval k's price (interval t0 + (k − 1)·15 min) is published."""
    return site.t0 + k * STEP + timedelta(minutes=1)


def test_once_per_interval_and_nothing_while_cheap(site):
    enable(site)
    history(site, site.t0, 0.5 * site.be19)
    first = responder.respond_all(now=at(site, 0))
    assert [o.result for o in first] == ["decided"]
    assert [o.result for o in responder.respond_all(now=at(site, 0) + timedelta(minutes=1))] == ["unchanged"]
    assert responder.respond_site(site.site_a.pk, now=at(site, 0))
    d = ResponderDecision.objects.get()
    assert d.interval_start == site.t0 and d.decision["actions"] == [] and not Command.objects.exists()
    groups = {g["group"]: g for g in d.decision["groups"]}
    assert groups[site.g19]["breakeven_usd_per_mwh"] == pytest.approx(site.be19, abs=0.01)
    assert groups[site.g19]["on_before"] == groups[site.g19]["on_after"] == 4
    assert RealtimeResponder.objects.get().last_interval_start == site.t0 - STEP


def test_curtails_the_least_efficient_through_curtail_commands(site):
    enable(site)
    history(site, site.t0, (site.be19 + site.be21) / 2)  # above the S19's breakeven, below the S21's
    responder.respond_all(now=at(site, 0))
    (command,) = Command.objects.all()
    assert command.command_type == "CURTAIL" and command.proposer_kind == ProposerKind.SYSTEM
    assert command.proposer == site.users["owner"]
    assert sorted(t.miner_id for t in command.targets.all()) == sorted(m.pk for m in site.s19s)
    assert command.params["mode"] == "hard" and Decimal(command.params["kw"]) == Decimal("13")
    assert command.dedupe_key.startswith(f"responder:{site.site_a.pk}:") and command.dedupe_key.endswith(":off")
    d = ResponderDecision.objects.get()
    assert [a["done"] for a in d.decision["actions"]] == [-4]
    assert list(d.commands.values_list("pk", flat=True)) == [command.pk]
    # The next interval at the same price: the S19s are already off, nothing more is proposed.
    price(site, site.t0, (site.be19 + site.be21) / 2)
    responder.respond_all(now=at(site, 1))
    assert Command.objects.count() == 1 and ResponderDecision.objects.count() == 2


def test_min_off_holds_the_restore_then_cancels_a_command_not_yet_sent(site):
    enable(site, min_off_minutes=30)
    high, low = (site.be19 + site.be21) / 2, 0.3 * site.be19
    history(site, site.t0, high)
    responder.respond_all(now=at(site, 0))  # decides t0: curtail the 4 S19s
    (curtail,) = Command.objects.all()
    assert curtail.status == CommandStatus.PENDING_APPROVAL  # a hard CURTAIL waits for an approver
    price(site, site.t0, low)
    responder.respond_all(now=at(site, 1))  # decides t0+15: 15 min after stopping, min off 30 → held
    d1 = ResponderDecision.objects.get(interval_start=site.t0 + STEP)
    assert d1.decision["actions"] == [] and any("min_off_hours" in h for h in d1.decision["held"])
    price(site, site.t0 + STEP, low)
    responder.respond_all(now=at(site, 2))  # 30 min after: restored, by cancelling the command not yet sent
    d2 = ResponderDecision.objects.get(interval_start=site.t0 + 2 * STEP)
    assert [a["done"] for a in d2.decision["actions"]] == [4]
    curtail.refresh_from_db()
    assert curtail.status == CommandStatus.CANCELLED and Command.objects.count() == 1


def test_restores_running_curtailments_with_hashing_enable_and_min_on_holds_a_new_stop(site):
    enable(site, min_on_minutes=30)
    high, low = (site.be19 + site.be21) / 2, 0.3 * site.be19
    history(site, site.t0, high)
    responder.respond_all(now=at(site, 0))
    Command.objects.update(status=CommandStatus.DISPATCHED)  # the edge took it: miners are off
    price(site, site.t0, low)
    responder.respond_all(now=at(site, 1))
    enable_cmd = Command.objects.get(command_type="HASHING_ENABLE")
    assert enable_cmd.proposer_kind == ProposerKind.SYSTEM and enable_cmd.targets.count() == 4
    # Started 15 min ago, min on 30: a new spike may not stop them yet…
    price(site, site.t0 + STEP, high)
    responder.respond_all(now=at(site, 2))
    d = ResponderDecision.objects.get(interval_start=site.t0 + 2 * STEP)
    assert d.decision["actions"] == [] and any("min_on_hours" in h for h in d.decision["held"])
    # …30 min after, it may.
    price(site, site.t0 + 2 * STEP, high)
    responder.respond_all(now=at(site, 3))
    assert Command.objects.filter(command_type="CURTAIL").count() == 2


def test_the_ramp_limit_spreads_a_curtailment_over_intervals(site):
    enable(site, ramp_kw_per_hour=26)  # 6.5 kW per 15 min: two S19s (3.25 kW) per interval
    history(site, site.t0, (site.be19 + site.be21) / 2)
    done = []
    for k in range(3):
        if k:
            price(site, site.t0 + (k - 1) * STEP, (site.be19 + site.be21) / 2)
        responder.respond_all(now=at(site, k))
        d = ResponderDecision.objects.get(interval_start=site.t0 + k * STEP)
        done.append([a["done"] for a in d.decision["actions"]])
    assert done == [[-2], [-2], []]
    first, second = (set(c.targets.values_list("miner_id", flat=True)) for c in Command.objects.order_by("pk"))
    assert not first & second and first | second == {m.pk for m in site.s19s}


def test_a_disabled_site_is_left_alone(site):
    enable(site)
    responder.responder_update(actor=site.users["owner"], site_id=site.site_a.pk, data={"enabled": False})
    history(site, site.t0, 3 * site.be21)
    assert responder.respond_all(now=at(site, 0)) == []
    assert not ResponderDecision.objects.exists() and not Command.objects.exists()


def test_a_stale_price_is_not_acted_on(site):
    enable(site)
    history(site, site.t0 - 4 * STEP, 3 * site.be21)
    (outcome,) = responder.respond_all(now=at(site, 0))
    assert outcome.result == "stale" and not Command.objects.exists()


def test_one_sites_error_does_not_stop_the_others(site, monkeypatch):
    enable(site)
    responder.responder_update(actor=site.users["owner"], site_id=site.site_b.pk, data={"enabled": True})
    history(site, site.t0, 3 * site.be21)
    history(site, site.t0, 3 * site.be21, s=site.site_b)
    real = plans.site_model

    def broken(s, **kwargs):
        if s.pk == site.site_a.pk:
            raise RuntimeError("boom")
        return real(s, **kwargs)

    monkeypatch.setattr(plans, "site_model", broken)
    outcomes = {o.site_id: o.result for o in responder.respond_all(now=at(site, 0))}
    assert outcomes == {site.site_a.pk: "error", site.site_b.pk: "decided"}
    assert Command.objects.filter(site=site.site_b).exists()


def test_the_plans_cap_is_obeyed(site):
    from intelligence.models import CurtailmentPlan

    enable(site)
    CurtailmentPlan.objects.create(
        site=site.site_a, status=CurtailmentPlan.Status.SENT, starts_at=site.t0 - timedelta(hours=1), hours=24,
        inputs={"constraints": {"cap_kw": 10.5}}, result={},
    )  # fmt: skip
    history(site, site.t0, 0.3 * site.be19)  # cheap: everything would run, but the cap allows 10.5 kW
    responder.respond_all(now=at(site, 0))
    d = ResponderDecision.objects.get()
    assert d.decision["cap_kw"] == 10.5 and d.decision["power_kw"] <= 10.5
    assert Command.objects.filter(command_type="CURTAIL").count() >= 1


def test_the_beat_task_records_a_job_run(site):
    from hashinsight.events.models import JobRun
    from intelligence.responder_tasks import respond_realtime

    enable(site)
    history(site, site.t0, 0.5 * site.be19)
    respond_realtime.delay()
    run = JobRun.objects.get(job_type="realtime_responder")
    assert run.status == JobRun.Status.SUCCESS and run.result["sites"][0]["site"] == site.site_a.pk


def test_a_price_not_yet_published_is_never_used(site):
    """The interval being decided (t0) already has a row (an upload ahead of time, a feed's preliminary figure): the
    decision for t0 still uses only intervals that have ended, so it is what it would be without that row."""
    enable(site)
    history(site, site.t0, 0.5 * site.be19)
    price(site, site.t0, 50 * site.be21)  # t0's own price, "known" before t0 ends
    responder.respond_all(now=at(site, 0))
    d = ResponderDecision.objects.get()
    assert d.interval_start == site.t0 and d.decision["price_interval_start"].startswith(
        (site.t0 - STEP).strftime("%Y-%m-%dT%H:%M")
    )
    assert d.decided_price_usd_per_mwh < Decimal(str(site.be19)) and not Command.objects.exists()
