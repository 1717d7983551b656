"""Portal routes of reports (owner: reports; namespace ``portal``)."""

urlpatterns: list = []
