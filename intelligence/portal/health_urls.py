"""Portal routes of the intelligence layer's health part (miner health; namespace ``portal``)."""

urlpatterns: list = []
