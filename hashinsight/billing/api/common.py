"""What the finance API views (invoices, payments, SLA, proofs) share: the FINANCE module gate of their views and
the one way they check a request body or query. Each views module had its own copy; one copy here keeps the access
rule and the 400 answer the same everywhere."""

from __future__ import annotations

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView


class FinanceView(CsvCapableAPIView):
    module = Module.FINANCE
    permission_classes = [ModuleAccess]


def valid(serializer_class, data) -> dict:
    """The validated data, or a 400 in the standard error shape (``raise_exception``): bad input changes nothing."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
