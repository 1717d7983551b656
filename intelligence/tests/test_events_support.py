"""Shared set-up of the curtailment event tests: site A of the farm with two own S19 (the least efficient) beside its
three S21 (own, client X, client Y), a fixed hashprice, a clock tests can move, and the edge's acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commands.models import Command, CommandStatus, CommandTarget
from hashinsight.tests.factories import MinerFactory, MinerModelFactory

HASHPRICE = 0.05  # USD per TH/s per day, fixed so the figures can be checked by hand


@pytest.fixture
def site(farm, monkeypatch):
    from intelligence import curtailment_plans as plans

    monkeypatch.setattr(plans, "market_hashprice", lambda: (HASHPRICE, "test"))
    s19 = MinerModelFactory(code="antminer-s19-95t", name="Antminer S19", hashrate_ths=Decimal(95), power_w=3250)
    farm.s19s = [MinerFactory(zone=farm.zone_a, site=farm.site_a, model=s19, rack="R1") for _ in range(2)]
    farm.s21_own = farm.miners[("site-a", "own")]
    farm.s21_x = farm.miners[("site-a", "client-x")]
    farm.s21_y = farm.miners[("site-a", "client-y")]
    farm.actor = farm.users["siteowner_a"]
    return farm


class Clock:
    """``timezone.now`` under the test's control (the services, the control plane and the audit chain all read it)."""

    def __init__(self, monkeypatch, start: datetime):
        self.now = start
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, **delta) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    real = datetime.now(UTC).replace(microsecond=0)
    return Clock(monkeypatch, real)


def ack(command: Command, at: datetime, *, failed_serials=()) -> None:
    """What the edge's acknowledgement leaves: the command COMPLETED (PARTIAL with failures), each target's
    result and time."""
    CommandTarget.objects.filter(command=command).update(result_status="ok", acked_at=at)
    if failed_serials:
        CommandTarget.objects.filter(command=command, serial__in=failed_serials).update(result_status="failed")
    status = CommandStatus.PARTIAL if failed_serials else CommandStatus.COMPLETED
    Command.objects.filter(pk=command.pk).update(status=status, dispatched_at=at)


def live(miner, at: datetime, *, power_w: float | None, ths: float | None, status: str = "hashing") -> None:
    from telemetry.models import LiveStatus

    LiveStatus.objects.update_or_create(
        miner=miner,
        defaults={
            "site_id": miner.site_id, "customer_id": miner.customer_id, "last_seen": at, "updated_at": at,
            "status": status, "power_w": power_w, "hashrate_ths_instant": ths,
            "hashrate_ghs": None if ths is None else ths * 1000,
        },
    )  # fmt: skip
