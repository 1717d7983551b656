"""Portal routes of the intelligence layer's events part (curtailment events, response profiles and programmes;
namespace ``portal``)."""

urlpatterns: list = []
