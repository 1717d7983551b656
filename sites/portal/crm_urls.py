"""Portal routes of CRM: deals and hosting contracts (owner: crm; namespace ``portal``)."""

urlpatterns: list = []
