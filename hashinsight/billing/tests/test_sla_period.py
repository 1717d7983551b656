"""``classify_period``: the SLA split of a contract's month read from telemetry and the control plane, against a
hand-computed February (28 days, 3 miners: 2,016 miner-hours)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from hashinsight.accounts.roles import Role
from hashinsight.billing import sla
from hashinsight.billing.models import ForceMajeureWindow
from hashinsight.billing.tests.factories_sla import at, command, curtailment_event, daily_month, safety
from hashinsight.tests.factories import (
    CustomerFactory,
    HostingContractFactory,
    MinerFactory,
    SiteFactory,
    UserFactory,
    ZoneFactory,
)

pytestmark = pytest.mark.django_db

FEB = date(2026, 2, 1)


def d(n: int) -> date:
    return date(2026, 2, n)


@pytest.fixture
def month():
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    client, other = CustomerFactory(), CustomerFactory()
    m1, m2, m3 = (MinerFactory(zone=zone, site=site, customer=client) for _ in range(3))
    stranger = MinerFactory(zone=zone, site=site, customer=other)
    contract = HostingContractFactory(
        customer=client, site=site, curtailment_allowance_hours=D("10"), sla_uptime_target_pct=D("99.50"),
        sla_credit_schedule=[{"below_pct": "99.5", "credit_pct": "5"}, {"below_pct": "99", "credit_pct": "10"}],
    )  # fmt: skip
    client_user = UserFactory(role=Role.CLIENT)
    operator = UserFactory(role=Role.ADMIN)
    uptime = {
        (m1.pk, d(3)): 75.0,  # power loss at 02:00 (site-wide, to the day's end): 6 h operator
        (m1.pk, d(5)): 50.0,  # client disable 10:00 → enable 22:00: 12 h client
        (m1.pk, d(25)): 100 * 20 / 24,  # curtailment event 01:00–05:00: 4 h excluded (allowance)
        (m2.pk, d(8)): 75.0,  # operator CURTAIL 00:00–06:00: 6 h excluded (allowance 10 → 4)
        (m2.pk, d(9)): 75.0,  # operator CURTAIL 12:00–18:00: 4 h excluded, 2 h operator
        (m2.pk, d(12)): 50.0,  # force majeure 06:00–18:00: 12 h excluded
        (m3.pk, d(15)): 50.0,  # fan failure at 12:00: 12 h excluded
        (m3.pk, d(17)): 87.5,  # … still explained until it is back: 3 h excluded (the 16th has no row: 24 h)
        (m3.pk, d(20)): 100 * 22 / 24,  # nothing explains it: 2 h operator
        (m3.pk, d(22)): 75.0,  # a restart that failed at 09:00: 6 h operator
        (stranger.pk, d(3)): 0.0,  # another client's miner: never in this contract's answer
    }
    daily_month([m1, m2, m3, stranger], FEB, d(28), uptime=uptime, missing={(m3.pk, d(16))})
    safety(site, "power_loss", at(d(3), 2))
    command(site, "HASHING_DISABLE", [m1], proposer=client_user, when=at(d(5), 10))
    command(site, "HASHING_ENABLE", [m1], proposer=operator, when=at(d(5), 22))
    curtailment_event(site, m1, at(d(25), 1), at(d(25), 5))
    curtail = {"start": "2026-02-08T00:00:00Z", "end": "2026-02-08T06:00:00Z", "kw": "3.5", "mode": "hard"}
    c8 = command(site, "CURTAIL", [m2], proposer=operator, when=at(d(7), 23), params=curtail)
    c9 = command(site, "CURTAIL", [m2], proposer=None, proposer_kind="ai", when=at(d(9), 11),
                 params={**curtail, "start": "2026-02-09T12:00:00Z", "end": "2026-02-09T18:00:00Z"})  # fmt: skip
    ForceMajeureWindow.objects.create(site=site, start=at(d(12), 6), end=at(d(12), 18), reason="Ice storm")
    safety(site, "fan_failure", at(d(15), 12), miner=m3)
    restart = command(site, "MINER_RESTART", [m3], proposer=operator, status="FAILED", when=at(d(22), 9))
    return locals()


def test_hand_computed_february(month, django_assert_max_num_queries):
    m1, m2, m3 = month["m1"], month["m2"], month["m3"]
    with django_assert_max_num_queries(14):
        out = sla.classify_period(month["contract"], FEB, d(28))
    assert set(out) == {
        (m1.pk, d(3)), (m1.pk, d(5)), (m1.pk, d(25)), (m2.pk, d(8)), (m2.pk, d(9)), (m2.pk, d(12)),
        (m3.pk, d(15)), (m3.pk, d(16)), (m3.pk, d(17)), (m3.pk, d(20)), (m3.pk, d(22)),
    }  # fmt: skip
    assert out[(m1.pk, d(3))] == sla.DayDowntime(operator_h=D("6.000"), reasons=("site_outage",))
    disable = month["client_user"].proposed_commands.get()
    assert out[(m1.pk, d(5))] == sla.DayDowntime(client_h=D("12.000"), reasons=("client_disable",),
                                                 command_ids=(disable.pk,))  # fmt: skip
    assert out[(m1.pk, d(25))] == sla.DayDowntime(
        excluded_h=D("4.000"), curtailed_h=D("4.000"), reasons=("curtailment_allowance",)
    )
    assert out[(m2.pk, d(8))] == sla.DayDowntime(
        excluded_h=D("6.000"), curtailed_h=D("6.000"), reasons=("curtailment_allowance",),
        command_ids=(month["c8"].pk,),
    )  # fmt: skip
    assert out[(m2.pk, d(9))] == sla.DayDowntime(
        operator_h=D("2.000"), excluded_h=D("4.000"), curtailed_h=D("6.000"),
        reasons=("curtailment_allowance", "curtailment"), command_ids=(month["c9"].pk,),
    )  # fmt: skip
    assert out[(m2.pk, d(12))] == sla.DayDowntime(excluded_h=D("12.000"), reasons=("force_majeure",))
    assert [out[(m3.pk, d(n))].excluded_h for n in (15, 16, 17)] == [D("12.000"), D("24"), D("3.000")]
    assert out[(m3.pk, d(20))] == sla.DayDowntime(operator_h=D("2.000"), reasons=("unexplained",))
    assert out[(m3.pk, d(22))] == sla.DayDowntime(
        operator_h=D("6.000"), reasons=("maintenance_failed",), command_ids=(month["restart"].pk,)
    )

    summary = sla.period_summary(month["contract"], FEB, d(28), out)
    assert (summary["operator_h"], summary["client_h"], summary["excluded_h"]) == (D("16"), D("12"), D("65"))
    assert summary["period_h"] == D("2016")
    # 100 × (2016 − 16) / 2016 = 99.2063… → 99.206 %: below the 99.5 % target, not below 99 → 5 % credit.
    assert summary["sla_uptime_pct"] == D("99.206")
    assert summary["credit_pct"] == D("5")


def test_the_callers_uptime_gives_the_same_answer(month):
    from telemetry.models import Daily

    uptime = {(m, day): pct for m, day, pct in Daily.objects.values_list("miner_id", "day", "uptime_pct")}
    assert sla.classify_period(month["contract"], FEB, d(28), uptime=uptime) == sla.classify_period(
        month["contract"], FEB, d(28)
    )


def test_a_period_from_mid_month_sees_the_allowance_used_before_it(month):
    out = sla.classify_period(month["contract"], d(9), d(28), site_cache={})
    split = out[(month["m2"].pk, d(9))]
    assert (split.excluded_h, split.operator_h) == (D("4.000"), D("2.000"))  # the 8th used 6 of the 10 h
    assert all(day >= d(9) for _, day in out)


def test_a_hold_for_non_payment_counts_as_the_clients(month):
    m1 = month["m1"]
    command(month["site"], "HASHING_DISABLE", [m1], proposer=month["operator"], when=at(d(20), 0),
            dedupe_key=f"billing-hold:{month['client'].pk}:{month['site'].pk}")  # fmt: skip
    from telemetry.models import Daily

    Daily.objects.filter(miner_id=m1.pk, day__gte=d(20)).update(uptime_pct=0.0)
    out = sla.classify_period(month["contract"], FEB, d(28))
    assert out[(m1.pk, d(20))].client_h == D("24.000")
    assert out[(m1.pk, d(25))].client_h == D("24.000")  # the disable outranks the curtailment event
    # An operator's own stop is operator-caused and named.
    command(month["site"], "HASHING_DISABLE", [month["m2"]], proposer=month["operator"], when=at(d(27), 12))
    Daily.objects.filter(miner_id=month["m2"].pk, day=d(27)).update(uptime_pct=50.0)
    out = sla.classify_period(month["contract"], FEB, d(28))
    assert out[(month["m2"].pk, d(27))].reasons == ("operator_disable",)
    assert out[(month["m2"].pk, d(27))].operator_h == D("12.000")


def test_site_outage_seen_in_five_minute_history(month):
    from datetime import timedelta

    from telemetry.models import SiteDaily, SiteHistory5m

    site, m1 = month["site"], month["m1"]
    SiteDaily.objects.create(site=site, day=d(10), miners_reporting=4, avg_hashrate_ths=800, energy_kwh=300,
                             uptime_pct=90)  # fmt: skip
    rows = []
    for i in range(288):
        bucket = at(d(10)) + timedelta(minutes=5 * i)
        hashing = 1 if 36 <= i < 60 else 4  # 03:00–05:00: one miner of four hashing
        rows.append(
            SiteHistory5m(
                site=site,
                bucket=bucket,
                miners_reporting=4,
                miners_hashing=hashing,
                hashrate_ths=200.0 * hashing,
                power_w=3500.0 * hashing,
                uptime_fraction=hashing / 4,
            )
        )
    SiteHistory5m.objects.bulk_create(rows)
    from telemetry.models import Daily

    Daily.objects.filter(miner_id=m1.pk, day=d(10)).update(uptime_pct=100 * 21 / 24)  # 3 h down: 2 explained
    split = sla.classify_period(month["contract"], FEB, d(28))[(m1.pk, d(10))]
    assert split.operator_h == D("3.000")
    assert split.reasons == ("site_outage", "unexplained")


def test_credit_schedule(month):
    contract = month["contract"]
    assert sla.sla_credit_pct(contract, D("99.6")) == 0
    assert sla.sla_credit_pct(contract, D("99.2")) == D("5")
    assert sla.sla_credit_pct(contract, D("98")) == D("10")
    contract.sla_credit_schedule = [{"below_pct": "oops"}]
    assert sla.sla_credit_pct(contract, D("50")) == 0


def test_contract_without_miners_and_outside_its_term(month):
    contract = month["contract"]
    assert sla.classify_period(contract, date(2024, 1, 1), date(2024, 1, 31)) == {}
    empty = HostingContractFactory(site=month["site"])
    assert sla.classify_period(empty, FEB, d(28)) == {}
