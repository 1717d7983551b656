"""Portal routes of the intelligence layer's market part (namespace ``portal``)."""

urlpatterns: list = []
