"""Portal routes of the intelligence layer's health part (miner health; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views.miner_health import miner_health, miner_health_recompute

urlpatterns: list = [
    path("miner-health/", miner_health, name="miner-health"),
    path("miner-health/recompute", miner_health_recompute, name="miner-health-recompute"),
]
