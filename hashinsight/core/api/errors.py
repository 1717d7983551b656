"""Every API error, 4xx or 5xx, has one shape: ``{error_code, message, request_id, details}``."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hashinsight.core.api.parsers import NulCharacter, RequestTooLarge
from hashinsight.core.errors import DomainError
from hashinsight.observability.context import current_request_id
from hashinsight.observability.unavailable import is_database_down, unavailable_body

logger = logging.getLogger(__name__)

_CODES = {
    NulCharacter: "nul_character",  # before ParseError, its base
    RequestTooLarge: "request_too_large",
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, details=None) -> dict:
    return {"error_code": code, "message": str(message), "request_id": current_request_id(), "details": details or {}}


def _message_and_details(exc: exceptions.APIException) -> tuple[str, dict]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return "The request is not valid; see details.", details
    return str(detail), {}


class _Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _conflict(exc) -> exceptions.APIException | None:
    """Database refusals that mean "someone else changed this first" or "this is still in use": 409.

    Services check before they write, but two requests can pass the check together; the constraint
    then decides, and the loser gets a stable code instead of a 500. Services whose intent is
    idempotent retry inside a savepoint instead of letting this through."""
    if isinstance(exc, ProtectedError | RestrictedError):
        logger.info("delete refused by a protected reference", exc_info=exc)
        return _Conflict(_("Other records still refer to this one; move or delete them first."), code="protected")
    if isinstance(exc, IntegrityError):
        logger.warning("write refused by a database constraint", exc_info=exc)
        return _Conflict(_("The change conflicts with data saved meanwhile; nothing was changed. Try again."))
    return None


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many fields, a bad multipart boundary…
        exc = exceptions.ParseError(_("The request could not be read."))
    exc = _conflict(exc) or exc
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if is_database_down(exc):
        # The database is unreachable, or this transaction lost a deadlock: temporary, and nothing was written
        # (observability/unavailable.py).
        body, retry_after = unavailable_body(exc)
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "An unexpected error occurred. Quote the request id when reporting it."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, _Conflict):
        code = exc.get_codes()
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), getattr(exc, "default_code", "error"))
    message, details = _message_and_details(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait:
        details = {"retry_after_s": int(exc.wait)}
    response.data = error_body(code, message, details)
    return response


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _wants_json(request):
        return JsonResponse(error_body("server_error", "An unexpected error occurred."), status=500)
    from django.views.defaults import server_error

    return server_error(request)


def handler403(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def handler400(request, exception=None):
    # Django lands here for a SuspiciousOperation raised outside DRF (e.g. a middleware reading the body).
    if _wants_json(request):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("request_too_large", RequestTooLarge.default_detail), status=413)
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
