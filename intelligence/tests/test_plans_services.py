"""Curtailment plans on the Django side: the plan made from the database (miners grouped, day-ahead prices,
hashprice) is the optimizer's own answer on the same inputs; bad input is a 400 naming the constraint; sending
proposes one CURTAIL command per block with the right window, kW and targets, and sending again adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commands.models import Command
from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import MinerFactory, MinerModelFactory
from intelligence import curtailment_plans as plans
from intelligence.algorithms import optimizer
from intelligence.models import CurtailmentPlan, Forecast, MarketDay, PowerPrice

pytestmark = pytest.mark.django_db


def tomorrow_utc() -> datetime:
    now = timezone.now().astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


@pytest.fixture
def market(db):
    return MarketDay.objects.create(
        date=date(2025, 11, 1), btc_price_usd=Decimal("95000"), difficulty=Decimal("150000000000000"),
        fees_btc=Decimal("4.5"),
    )  # fmt: skip


@pytest.fixture
def site(farm, market):
    """Site A: three S21 (one own, one per client) from the farm plus four own S19 (the least efficient)."""
    s19 = MinerModelFactory(code="antminer-s19-95t", name="Antminer S19", hashrate_ths=Decimal(95), power_w=3250)
    farm.s19s = [MinerFactory(zone=farm.zone_a, site=farm.site_a, model=s19) for _ in range(4)]
    farm.s19 = s19
    return farm


def breakevens() -> tuple[float, float, float]:
    hp, _source = plans.market_hashprice()
    return hp, optimizer.breakeven_usd_per_mwh(95, 3.25, hp), optimizer.breakeven_usd_per_mwh(200, 3.5, hp)


def shape(be19: float, be21: float) -> list[float]:
    """Cheap hours; hours 10–13 between the S19's and the S21's breakeven; hours 16–18 above both."""
    prices = [round(0.5 * be19, 2)] * 24
    for h in range(10, 14):
        prices[h] = round((be19 + be21) / 2, 2)
    for h in range(16, 19):
        prices[h] = round(2 * be21, 2)
    return prices


def load_prices(site, start: datetime, prices: list[float]) -> None:
    PowerPrice.objects.bulk_create(
        PowerPrice(site=site, market="day_ahead", interval_start=start + timedelta(hours=h), interval_minutes=60,
                   usd_per_mwh=Decimal(str(p)), source="test")
        for h, p in enumerate(prices)
    )  # fmt: skip


def test_plan_from_the_database_is_the_optimizers_own_answer(site):
    hp, be19, be21 = breakevens()
    start = tomorrow_utc()
    prices = shape(be19, be21)
    load_prices(site.site_a, start, prices)
    plan = plans.plan_create(actor=site.users["owner"], data={"site": site.site_a.pk, "start": start.isoformat()})

    s21 = site.miners[("site-a", "own")].model
    z = str(site.zone_a.pk)
    by_hand = optimizer.SiteModel(
        groups=(
            optimizer.MinerGroup(plans.group_id(s21.pk, site.zone_a.pk, None), "Antminer S21", 1, 3.5, 200.0, z),
            optimizer.MinerGroup(plans.group_id(s21.pk, site.zone_a.pk, site.client_x.pk), "Antminer S21", 1, 3.5,
                                 200.0, z, str(site.client_x.pk), priority=1),
            optimizer.MinerGroup(plans.group_id(s21.pk, site.zone_a.pk, site.client_y.pk), "Antminer S21", 1, 3.5,
                                 200.0, z, str(site.client_y.pk), priority=1),
            optimizer.MinerGroup(plans.group_id(site.s19.pk, site.zone_a.pk, None), "Antminer S19", 4, 3.25, 95.0, z),
        ),
        zone_capacity_kw={z: 5000.0},
    )  # fmt: skip
    direct = optimizer.plan_curtailment(by_hand, prices, hp)
    assert plan.result["plan"]["on_counts"] == direct.as_dict()["plan"]["on_counts"]
    assert plan.profit_usd == direct.plan.total_profit_usd
    assert plan.run_all_profit_usd == direct.run_all.total_profit_usd
    assert plan.threshold_profit_usd == direct.threshold.total_profit_usd
    s19_on = plan.result["plan"]["on_counts"][plans.group_id(site.s19.pk, site.zone_a.pk, None)]
    assert s19_on[0] == 4 and s19_on[10:14] == [0] * 4 and s19_on[16] == 0  # the S19s sit out the dear hours
    assert plan.profit_usd > plan.run_all_profit_usd
    assert plan.inputs["prices_usd_per_mwh"] == prices and plan.inputs["price_source"] == "day_ahead"
    assert plan.inputs["hashprice_source"].startswith("market day")
    assert plan.solver["gap_rel_limit"] == optimizer.DEFAULT_GAP_REL and plan.solver["time_limit_s"] > 0
    assert plan.status == CurtailmentPlan.Status.DRAFT and plan.created_by == site.users["owner"]


def test_hashprice_comes_from_the_latest_forecast_when_there_is_one(site):
    start = tomorrow_utc()
    Forecast.objects.create(
        target="hashprice", subject="", algorithm="naive", origin=start.date() - timedelta(days=1), horizon_days=7,
        points=[{"date": (start.date() + timedelta(days=d)).isoformat(), "yhat": 0.04 + d / 100} for d in range(3)],
    )  # fmt: skip
    values, source = plans.hourly_hashprice(start, 48)
    assert source.startswith("forecast #")
    assert values[:24] == [0.04] * 24 and values[24:] == [0.05] * 24


def test_missing_prices_name_the_hours(site):
    start = tomorrow_utc()
    load_prices(site.site_a, start, [30.0] * 20)
    with pytest.raises(DomainError) as caught:
        plans.plan_create(actor=site.users["owner"], data={"site": site.site_a.pk, "start": start.isoformat()})
    assert caught.value.code == "missing_prices"
    assert caught.value.details["constraint"] == "prices_usd_per_mwh"
    assert caught.value.details["missing_hours"] == [20, 21, 22, 23]
    assert not CurtailmentPlan.objects.exists()


def sent_plan(site, *, mode="hard"):
    _hp, be19, be21 = breakevens()
    start = tomorrow_utc()
    load_prices(site.site_a, start, shape(be19, be21))
    plan = plans.plan_create(actor=site.users["siteowner_a"], data={"site": site.site_a.pk, "start": start.isoformat()})
    return plan, plans.plan_send(plan=plan, actor=site.users["siteowner_a"], mode=mode)


def test_send_proposes_one_curtail_command_per_block_with_its_window_and_kw(site):
    plan, (plan_after, commands, lines) = sent_plan(site)
    assert plan_after.status == CurtailmentPlan.Status.SENT and plan_after.sent_at is not None
    blocks = plans.plan_blocks(plan)
    assert len(commands) == len(blocks) == len(lines) >= 2
    s19_group = plans.group_id(site.s19.pk, site.zone_a.pk, None)
    by_key = {c.dedupe_key: c for c in commands}
    for block in blocks:
        command = by_key[block.dedupe_key(plan.pk)]
        assert command.command_type == "CURTAIL"
        assert command.params["start"] == (plan.starts_at + timedelta(hours=block.first_hour)).isoformat().replace(
            "+00:00", "Z"
        )
        assert command.params["end"] == (plan.starts_at + timedelta(hours=block.end_hour)).isoformat().replace(
            "+00:00", "Z"
        )
        assert command.params["mode"] == "hard"
        kw_each = 3.25 if block.group_id == s19_group else 3.5
        assert Decimal(str(command.params["kw"])) == Decimal(str(round(block.off * kw_each, 3)))
        assert command.targets.count() == block.off
    s19_blocks = [b for b in blocks if b.group_id == s19_group]
    assert s19_blocks[0].first_hour == 10 and s19_blocks[0].off == 4
    assert set(plan_after.commands.values_list("pk", flat=True)) == {c.pk for c in commands}


def test_sending_again_proposes_nothing_new(site):
    plan, (_p, commands, _lines) = sent_plan(site)
    count = Command.objects.count()
    _again, commands_again, lines = plans.plan_send(plan=plan, actor=site.users["owner"])
    assert Command.objects.count() == count
    assert [c.pk for c in commands_again] == [c.pk for c in commands]
    assert {line["result"] for line in lines} == {"already_sent"}


def test_targets_are_the_groups_least_efficient_miners_by_live_readings(site):
    from telemetry.models import LiveStatus

    now = timezone.now()
    worst = site.s19s[2]
    for m in site.s19s:
        LiveStatus.objects.create(
            miner=m, site_id=m.site_id, last_seen=now, status="online", updated_at=now,
            power_w=3600.0 if m == worst else 3250.0, hashrate_ghs=95000.0,
        )  # fmt: skip
    group = {"model_id": site.s19.pk, "zone_id": site.zone_a.pk, "customer_id": None, "kw_each": 3.25,
             "ths_each": 95.0}  # fmt: skip
    assert plans._least_efficient(group, site.site_a.pk, 2) == [worst.pk, min(m.pk for m in site.s19s if m != worst)]


def test_a_plan_of_explicit_groups_cannot_be_sent(site):
    plan = plans.plan_create(
        actor=site.users["owner"],
        data={"site": site.site_a.pk, "start": tomorrow_utc().isoformat(), "prices_usd_per_mwh": [500.0] * 24,
              "hashprice_usd_per_th_day": 0.05,
              "groups": [{"id": "a", "count": 10, "kw_each": 3.5, "ths_each": 200}]},
    )  # fmt: skip
    assert plan.result["plan"]["on_counts"]["a"] == [0] * 24
    with pytest.raises(DomainError) as caught:
        plans.plan_send(plan=plan, actor=site.users["owner"])
    assert caught.value.code == "plan_not_sendable" and caught.value.status == 409


def test_blocks_beyond_the_control_planes_horizon_wait_for_a_later_send(site, monkeypatch):
    import commands.services

    monkeypatch.setattr(commands.services, "MAX_TTL", timedelta(days=3))  # its horizon, shortened: clock-independent
    _hp, be19, be21 = breakevens()
    start = tomorrow_utc()
    hours = 168
    prices = [round(0.5 * be19, 2)] * hours
    prices[20] = prices[160] = round(2 * be21, 2)  # one dear hour tomorrow, one a week later
    load_prices(site.site_a, start, prices)
    owner = site.users["owner"]
    plan = plans.plan_create(actor=owner, data={"site": site.site_a.pk, "start": start.isoformat(), "hours": hours})
    _plan, commands, lines = plans.plan_send(plan=plan, actor=owner)
    assert {line["result"] for line in lines if line["start"].endswith("T20:00:00Z")} <= {"proposed"}
    later = [line for line in lines if line["result"] == "later"]
    assert later and all(line["command"] is None for line in later)
    assert all(
        datetime.fromisoformat(c.params["start"].replace("Z", "+00:00")) < start + timedelta(days=7) for c in commands
    )
