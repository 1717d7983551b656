"""Portal routes of the intelligence layer's roi part (namespace ``portal``)."""

urlpatterns: list = []
