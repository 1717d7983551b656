from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from hashinsight import api_urls
from hashinsight.observability import views as observability
from hashinsight.portal.views.api_docs import RedocView, SwaggerView
from hashinsight.portal.views.common import LoginView
from hashinsight.portal.views.favicon import favicon

handler400 = "hashinsight.core.api.errors.handler400"
handler403 = "hashinsight.core.api.errors.handler403"
handler404 = "hashinsight.core.api.errors.handler404"
handler500 = "hashinsight.core.api.errors.handler500"

admin.site.site_header = _("HashInsight")
admin.site.site_title = _("HashInsight admin")
admin.site.index_title = _("Operations")


def _form_page(heading) -> dict:
    return {"template_name": "registration/form_page.html", "extra_context": {"heading": heading}}


urlpatterns = [
    path("", include("hashinsight.portal.urls", namespace="portal")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(**_form_page(_("Change your password"))),
        name="password_change",
    ),
    path("accounts/password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(**_form_page(_("Reset your password"))),
        name="password_reset",
    ),
    path("accounts/password/reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(**_form_page(_("Choose a new password"))),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/health", observability.health, name="health"),
    path("ready", observability.ready, name="ready"),
    path("metrics", observability.metrics, name="metrics"),
    path("api/v1/", include(api_urls.v1)),
    path("api/edge/v1/", include("telemetry.api.edge_urls")),
    path("api/", include(api_urls.seed_aliases)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from local static files (drf-spectacular-sidecar), within the CSP.
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("favicon.ico", favicon, name="favicon"),
]
