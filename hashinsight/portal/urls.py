from django.urls import path

from hashinsight.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sites/", views.site_list, name="site-list"),
    path("sites/<slug:slug>/", views.site_detail, name="site-detail"),
    path("miners/", views.miner_list, name="miner-list"),
    path("alerts/", views.alert_list, name="alert-list"),
    path("calculator/", views.calculator, name="calculator"),
]
