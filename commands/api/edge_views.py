"""/api/edge/v1/commands/…: what an edge collector calls to receive its commands and acknowledge them.

Device token only (``telemetry.edge_auth.EdgeDeviceView``). A device only ever learns about the commands of its
own site (its zone's, when it is zone-bound): any other id answers 404, as does a command never dispatched."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commands import dispatch, services
from hashinsight.core.errors import DomainError
from telemetry.edge_auth import EdgeDeviceView

_Envelope = inline_serializer(
    "SignedCommand",
    {
        "command_id": serializers.IntegerField(),
        "site_id": serializers.IntegerField(),
        "targets": serializers.ListField(
            child=serializers.JSONField(),
            help_text='Serials; for CURTAIL, objects {"serial", "action": "power_target"|"stop"|"none", "power_w"}.',
        ),
        "type": serializers.CharField(),
        "params": serializers.DictField(),
        "priority": serializers.IntegerField(),
        "expires_at": serializers.CharField(),
        "dedupe_key": serializers.CharField(),
        "signed_at": serializers.CharField(),
        "nonce": serializers.CharField(),
        "signature": serializers.CharField(help_text="base64(HMAC-SHA256(canonical JSON of the fields, secret))"),
    },
)


class _Result(serializers.Serializer):
    miner = serializers.CharField(help_text="The target's serial.")
    status = serializers.ChoiceField(choices=["ok", "failed", "unsupported"])
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    before_state = serializers.DictField(required=False, allow_null=True)


class AckSerializer(serializers.Serializer):
    nonce = serializers.CharField(max_length=200)
    phase = serializers.ChoiceField(
        choices=["apply", "restore"],
        required=False,
        default="apply",
        help_text="apply (default): the command's results; restore: a CURTAIL's restore at its window's end.",
    )
    results = _Result(many=True)


class CommandPollView(EdgeDeviceView, APIView):
    """The commands due for this device, signed with its HMAC secret; taking them marks them DISPATCHED.
    ``wait`` (0–25 s) long-polls until one is due."""

    @extend_schema(
        parameters=[OpenApiParameter("wait", int, description="Seconds to wait for a command (0–25, default 0).")],
        responses={200: inline_serializer("CommandPoll", {"commands": serializers.ListField(child=_Envelope)})},
    )
    def get(self, request):
        raw = request.query_params.get("wait", "0")
        try:
            wait = float(raw)
        except ValueError:
            raise DomainError("invalid_wait", "wait is a number of seconds from 0 to 25.") from None
        if not 0 <= wait <= 3600:
            raise DomainError("invalid_wait", "wait is a number of seconds from 0 to 25.")
        commands = dispatch.long_poll(self.device, wait=wait)
        response = Response({"commands": commands})
        response["Cache-Control"] = "no-store"
        return response


class CommandAckView(EdgeDeviceView, APIView):
    """The per-miner results of a dispatched command: COMPLETED (all ok), PARTIAL or FAILED (none ok). With
    ``"phase": "restore"``, a CURTAIL's restore at its window's end (once; an identical resend is a no-op)."""

    @extend_schema(
        request=AckSerializer,
        responses={200: inline_serializer("CommandAcked", {"command_id": serializers.IntegerField(),
                                                           "status": serializers.CharField(),
                                                           "changed": serializers.BooleanField()})},
    )  # fmt: skip
    def post(self, request, command_id: int):
        body = AckSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        acknowledge = (
            services.command_acknowledge_restore
            if body.validated_data["phase"] == "restore"
            else services.command_acknowledge
        )
        command, changed = acknowledge(
            command_id=command_id,
            device=self.device,
            nonce=body.validated_data["nonce"],
            results=[dict(r) for r in body.validated_data["results"]],
            visible=dispatch.acknowledgeable(self.device),
        )
        return Response({"command_id": command.pk, "status": command.status, "changed": changed})
