import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hashinsight.observability import health as health_checks
from hashinsight.observability.metrics import REGISTRY
from hashinsight.observability.unavailable import RETRY_AFTER_S


@never_cache
@require_GET
def health(request):
    """Operational figures (no customer data): open to load balancers and monitors."""
    body = health_checks.health()
    response = JsonResponse(body, status=503 if body["status"] == "down" else 200)
    if body["status"] == "down":
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response


@never_cache
@require_GET
def ready(request):
    ok, checks = health_checks.ready()
    response = JsonResponse({"ready": ok, "checks": checks}, status=200 if ok else 503)
    if not ok:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied, token):
            return HttpResponse(status=401)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
