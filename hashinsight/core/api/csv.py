"""API views that also answer ``?format=csv`` with a streamed file (``hashinsight.portal.tables.streamed_csv``)."""

from __future__ import annotations

from rest_framework import renderers
from rest_framework.response import Response
from rest_framework.views import APIView


class CSVRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the views stream the file themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # pragma: no cover - never used
        return b""


class CsvCapableAPIView(APIView):
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CSVRenderer]

    def wants_csv(self) -> bool:
        return getattr(self.request.accepted_renderer, "format", None) == "csv"

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors of a CSV request are answered in the standard JSON error shape, never as a broken file.
        if (
            isinstance(response, Response)
            and getattr(getattr(request, "accepted_renderer", None), "format", "") == "csv"
        ):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)
