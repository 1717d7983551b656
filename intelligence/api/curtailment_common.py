"""What the curtailment APIs (plans, events, profiles and programmes) share: the CURTAILMENT module's view base,
the checked-input helper and the CSV response's schema."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.csv import CsvCapableAPIView

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv: the same rows as a CSV file")


class CurtailmentView(CsvCapableAPIView):
    module = Module.CURTAILMENT
    permission_classes = [ModuleAccess]


def valid(serializer_class, data) -> dict:
    """``data`` checked by ``serializer_class`` (a 400 with the standard error shape when it does not pass)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
