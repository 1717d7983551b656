"""Portal routes of SLA: force majeure and certificates (owner: sla; namespace ``portal``)."""

urlpatterns: list = []
