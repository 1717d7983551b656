"""The API's documentation pages, served from local static files (drf-spectacular-sidecar).

Swagger UI fits the strict Content-Security-Policy as it is (its init script is a file, served by
``SpectacularSwaggerSplitView``). ReDoc needs three narrow exceptions, on its page only:

- its styles are ``<style>`` elements it inserts (styled-components): ReDoc gives them a nonce when
  told one, so this response's nonce is allowed for styles (scripts stay ``'self'`` only);
- one stylesheet (perfect-scrollbar's) is inserted while the bundle loads, before ReDoc can be told
  the nonce: it is allowed by its SHA-256 (and the empty element it starts as, by the empty string's).
  The hash belongs to the pinned drf-spectacular-sidecar; the browser test in
  ``hashinsight/portal/tests/test_csp.py`` fails if an upgrade changes it;
- its search runs in a Web Worker made from a ``blob:`` URL, which only a script already running in
  the page can create."""

from __future__ import annotations

from csp.constants import NONCE
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

EMPTY_STYLE_SHA256 = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
PERFECT_SCROLLBAR_CSS_SHA256 = "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
REDOC_POLICY = {
    "style-src": [NONCE, EMPTY_STYLE_SHA256, PERFECT_SCROLLBAR_CSS_SHA256],
    "worker-src": ["'self'", "blob:"],
}


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api_docs/swagger_ui.html"


@method_decorator(csp_update(REDOC_POLICY), name="get")
class RedocView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        # Reading the nonce is what makes django-csp put it into this response's header.
        response.data["style_nonce"] = str(request._request.csp_nonce)
        return response
