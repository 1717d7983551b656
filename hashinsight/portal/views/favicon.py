"""``/favicon.ico``: browsers ask for it on every page that links no icon (admin, JSON, error pages)."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe


@require_safe
def favicon(request):
    # Resolved per request, not at import: under the manifest storage the hashed name exists only
    # after collectstatic, and a temporary redirect never pins a stale hashed name in browser caches.
    response = HttpResponseRedirect(static("img/favicon.svg"))
    patch_cache_control(response, public=True, max_age=24 * 60 * 60)
    return response
