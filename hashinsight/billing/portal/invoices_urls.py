"""Portal routes of invoices (operator side) (owner: invoicing; namespace ``portal``)."""

urlpatterns: list = []
