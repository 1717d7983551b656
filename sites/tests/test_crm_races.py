"""Two activations of overlapping contracts of one client at one site, at the same moment, on PostgreSQL: the client's
row lock makes the second wait for the first and then see it, so exactly one becomes active. Without the lock both
would pass the overlap check together (the patched check waits for the other thread right after passing)."""

from __future__ import annotations

import contextlib
import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import HostingContractFactory
from sites import crm_services as svc
from sites.models import HostingContract

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(*targets) -> None:
    """Run each target in its own thread (its own database connection) and wait for all."""
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def test_concurrent_activations_leave_one_active(farm, on_postgres, monkeypatch):
    drafts = [HostingContractFactory(customer=farm.client_x, site=farm.site_a, status="draft",
                                     start_date=date(2026, 1, 1)) for _ in range(2)]  # fmt: skip
    barrier = threading.Barrier(2, timeout=2)
    real_check = svc._check_no_overlap

    def check_then_wait(contract):
        real_check(contract)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # both here at once only if nothing serialises them

    monkeypatch.setattr(svc, "_check_no_overlap", check_then_wait)
    outcomes: list[str] = []

    def activate(contract):
        try:
            svc.contract_activate(actor=farm.users["owner"], contract=contract)
            outcomes.append("active")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    _at_once(*[lambda c=c: activate(c) for c in drafts])
    assert sorted(outcomes) == ["active", "contract_overlap"]
    assert HostingContract.objects.filter(status="active").count() == 1


def test_two_contracts_created_at_once_get_two_numbers(farm, on_postgres, monkeypatch):
    barrier = threading.Barrier(2, timeout=2)
    real_next = svc._next_number
    calls: list[str] = []

    def next_then_wait(start):
        number = real_next(start)
        calls.append(number)
        if len(calls) <= 2:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()  # both computed the same number before either saved
        return number

    monkeypatch.setattr(svc, "_next_number", next_then_wait)
    numbers: list[str] = []

    def create():
        try:
            c = svc.contract_create(actor=farm.users["owner"], customer=farm.client_x, site=farm.site_a,
                                    start_date=date(2026, 1, 1), rate_per_kwh=Decimal("0.06"))  # fmt: skip
            numbers.append(c.number)
        finally:
            connection.close()

    _at_once(create, create)
    assert calls[:2] == ["HC-2026-0001", "HC-2026-0001"]  # the clash happened
    assert sorted(numbers) == ["HC-2026-0001", "HC-2026-0002"]
    assert HostingContract.objects.count() == 2
