"""Portal routes of the intelligence layer's plans part (namespace ``portal``)."""

urlpatterns: list = []
