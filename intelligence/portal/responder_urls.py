"""Portal routes of the intelligence layer's responder part (the real-time responder; namespace ``portal``)."""

urlpatterns: list = []
