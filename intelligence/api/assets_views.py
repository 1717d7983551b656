"""``POST /api/v1/assets/{asset_id}/predict``: an asset's power (kW) and energy (kWh) per hour ahead, with 80 % and
95 % intervals, from its own history or the posted ``historical_data``.

The asset (``site:1``, ``zone:3``, ``miner:12``) is found in the caller's scope as for ``detect_anomalies`` (a
hidden one is a 404, whatever the body says). Nothing is written: a computation, so the ANALYTICS module's READ is
enough. The work is ``intelligence.asset_forecast``; this view only measures it."""

from __future__ import annotations

import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from intelligence.asset_forecast import asset_predict


class AssetPredictView(APIView):
    module = Module.ANALYTICS
    permission_classes = [ModuleAccess]
    detail = True  # a computation that writes nothing: READ on the module is enough for this POST

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Power and energy forecast of a site, zone or miner (its history or posted historical_data)",
    )
    def post(self, request, asset_id: str):
        """Body: ``{"forecast_horizon": 24, "historical_data": [{"ts": "2026-11-26T00:00:00Z", "power_kw": 3.2},
        …], "interval_minutes": 5}`` (``forecast_horizon`` 1–168 hours; the rest optional: without
        ``historical_data`` the asset's own history). Answer: one point per hour with ``power_kw`` and
        ``energy_kwh`` and their ``_lo80/_hi80/_lo95/_hi95`` bounds, the horizon's total energy, the method
        (``seasonal_level`` or the ``flat`` fallback with ``fallback_reason``) and where the answer came from."""
        started = time.perf_counter()
        answer = asset_predict(user=request.user, asset_id=asset_id, body=request.data)
        response = Response(answer)
        response["Server-Timing"] = f"predict;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response
