"""Portal routes of client finance: invoices, statements, proofs, SLA history."""

urlpatterns: list = []
