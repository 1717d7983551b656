"""Portal routes of the intelligence layer's roi part (namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views.roi import roi_waterfall

urlpatterns: list = [path("roi/", roi_waterfall, name="roi-waterfall")]
