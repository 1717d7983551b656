"""Reads of SLA certificates (owner: sla), already restricted to what a user may see.

Module FINANCE, READ (the certificate is a finance record that states credits; WEB3 only reads proofs): owners and
admins see every certificate, a site owner those of contracts at its sites, a hosting client its own only. Anything
else is not found (404), never forbidden. One query per call."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.billing.models import SlaCertificate
from hashinsight.core.errors import DomainError
from sites.selectors import scope_of


def certificate_list(*, user) -> QuerySet[SlaCertificate]:
    if not has_access(user, Module.FINANCE, Access.READ):
        return SlaCertificate.objects.none()
    qs = SlaCertificate.objects.select_related("customer", "contract", "contract__site", "invoice")
    q = scope_of(user).q(prefix="contract__", customer_prefix="")
    return qs if q is None else qs.filter(q)


def certificate_get(*, user, pk) -> SlaCertificate:
    try:
        pk = int(pk)
        if not 0 < pk < 2**63:
            raise ValueError(pk)
        return certificate_list(user=user).get(pk=pk)
    except (SlaCertificate.DoesNotExist, ValueError, TypeError, OverflowError):
        raise DomainError("not_found", gettext("No such SLA certificate."), status=404) from None


def contract_get(*, user, pk):
    """A hosting contract whose SLA ``user`` may read (FINANCE READ; a client its own, a site owner its sites')."""
    from sites.models import HostingContract

    if not has_access(user, Module.FINANCE, Access.READ):
        raise DomainError("not_found", gettext("No such hosting contract."), status=404)
    qs = HostingContract.objects.select_related("customer", "site")
    q = scope_of(user).q()
    if q is not None:
        qs = qs.filter(q)
    try:
        pk = int(pk)
        if not 0 < pk < 2**31:
            raise ValueError(pk)
        return qs.get(pk=pk)
    except (HostingContract.DoesNotExist, ValueError, TypeError):
        raise DomainError("not_found", gettext("No such hosting contract."), status=404) from None
