"""Portal routes of the intelligence layer's forecast part (namespace ``portal``)."""

urlpatterns: list = []
