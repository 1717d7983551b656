"""API routes of the intelligence layer's forecast part: ``v1`` under /api/v1/, ``seed`` under /api/."""

from django.urls import path, re_path

from intelligence.api.forecast_views import ForecastModelViewSet, ForecastViewSet, TrainingJobView, UserForecastView

_models_list = ForecastModelViewSet.as_view({"get": "list"})
_forecasts_list = ForecastViewSet.as_view({"get": "list"})

v1: list = [
    re_path(r"^forecasts/?$", _forecasts_list, name="forecast-list"),
    re_path(r"^forecasts/(?P<pk>[0-9]{1,18})/?$", ForecastViewSet.as_view({"get": "retrieve"}), name="forecast-detail"),
    re_path(r"^forecast-models/?$", _models_list, name="forecastmodel-list"),
    re_path(
        r"^forecast-models/(?P<pk>[0-9]{1,18})/?$",
        ForecastModelViewSet.as_view({"get": "retrieve"}),
        name="forecastmodel-detail",
    ),
    re_path(
        r"^forecast-models/(?P<pk>[0-9]{1,18})/activate/?$",
        ForecastModelViewSet.as_view({"post": "activate"}, detail=True),
        name="forecastmodel-activate",
    ),
    re_path(
        r"^forecast-models/(?P<pk>[0-9]{1,18})/rollback/?$",
        ForecastModelViewSet.as_view({"post": "rollback"}, detail=True),
        name="forecastmodel-rollback",
    ),
    re_path(r"^training-jobs/?$", TrainingJobView.as_view(), name="training-jobs"),
]
seed: list = [
    path("forecast/<int:user_id>", UserForecastView.as_view(), name="seed-forecast"),
]
