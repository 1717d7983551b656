"""Curtailment events read a hosting client's priority and firm status from its active contract at the site when
the request does not name the client (``intelligence.curtailment_events._with_contract_priorities``).

Site A (``intelligence.tests.test_events_support.site``): own miners 2 × S19 (3.25 kW) + 1 × S21 (3.5 kW); clients
X and Y one S21 each (3.5 kW). Default order: own 0, clients 1 (X before Y by id); higher is curtailed later."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import HostingContractFactory
from intelligence import curtailment_events as events
from intelligence.tests.test_events_support import site  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def _preview(site, **kw):  # noqa: F811
    return events.event_preview(actor=site.actor, site_id=site.site_a.pk, mode="kw_reduction", **kw)


def _serials(body):
    return [m["serial"] for m in body["miners"]]


def test_contract_priority_orders_clients(site):  # noqa: F811
    late_own = {"own": 5}  # own miners last, so the clients' order shows
    assert _serials(_preview(site, target_kw=3, client_priority=late_own)) == [site.s21_x.serial]
    contract = HostingContractFactory(customer=site.client_y, site=site.site_a, curtailment_priority=0)
    assert _serials(_preview(site, target_kw=3, client_priority=late_own)) == [site.s21_y.serial]
    # The request's own value for the client wins over the contract.
    explicit = {**late_own, str(site.client_y.pk): 2}
    assert _serials(_preview(site, target_kw=3, client_priority=explicit)) == [site.s21_x.serial]
    # Only an active contract in force today counts.
    for status, start in (("draft", date(2025, 1, 1)), ("active", timezone.now().date() + timedelta(days=1))):
        contract.status, contract.start_date = status, start
        contract.save()
        assert _serials(_preview(site, target_kw=3, client_priority=late_own)) == [site.s21_x.serial]


def test_a_firm_contract_is_never_curtailed_by_a_normal_event(site):  # noqa: F811
    HostingContractFactory(customer=site.client_x, site=site.site_a, firm=True)
    with pytest.raises(DomainError) as exc:
        _preview(site, target_kw=14)  # 17 kW in all, 13.5 without client X
    assert exc.value.code == "cannot_shed" and exc.value.details["available_kw"] == "13.500"
    assert site.s21_x.serial not in _serials(_preview(site, target_kw=13.5))
    # An emergency outranks hosting contracts; a contract at another site changes nothing here.
    assert site.s21_x.serial in _serials(_preview(site, target_kw=14, priority="emergency"))
    HostingContractFactory(customer=site.client_y, site=site.site_b, firm=True)
    assert site.s21_y.serial in _serials(_preview(site, target_kw=13.5))
