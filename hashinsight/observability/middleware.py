import re
import uuid

from django.utils.functional import SimpleLazyObject, empty

from hashinsight.observability.context import request_id_var, user_id_var

# A caller-supplied id is kept only if it is short and plain, so it is safe to log and echo.
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if sane) and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        rid_token = request_id_var.set(request.id)
        uid_token = user_id_var.set(None)
        try:
            response = self.get_response(request)
            user = getattr(request, "user", None)
            # Only a user already loaded: loading one here needs the database, which may be down.
            if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
                user = None
            if user is not None and getattr(user, "is_authenticated", False):
                user_id_var.set(user.pk)
        finally:
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)
        response["X-Request-ID"] = request.id
        return response
