"""Portal routes of the intelligence layer's forecast part (namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import forecasts

urlpatterns: list = [
    path("forecasts/", forecasts.forecast_page, name="forecasts"),
    path("forecasts/csv", forecasts.forecast_csv_download, name="forecasts-csv"),
    path("forecasts/models/<int:pk>/activate/", forecasts.forecast_model_activate, name="forecast-model-activate"),
    path("forecasts/models/<int:pk>/rollback/", forecasts.forecast_model_rollback, name="forecast-model-rollback"),
]
