"""Portal routes of payments and commissions (owner: payments; namespace ``portal``)."""

urlpatterns: list = []
