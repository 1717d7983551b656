"""The commands API, ``/api/v1/commands…``: propose (and preview), approve, deny, cancel, roll back, read and list.

Commands belong to the CURTAILMENT module; which commands: those of the sites you operate (hidden → 404,
read-only grant → 403). Every write goes through ``commands.services``."""

from __future__ import annotations

from datetime import timedelta

from django.http import JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from commands import risk, selectors, services
from commands.api.serializers import (
    CommandDetailSerializer,
    CommandFilterSerializer,
    CommandPageSerializer,
    CommandSerializer,
    DecisionSerializer,
    ProposeSerializer,
    RollbackSerializer,
)
from hashinsight.accounts.permissions import ModuleAccess
from hashinsight.accounts.roles import Module
from hashinsight.core.api.errors import error_body
from hashinsight.core.errors import DomainError


class _CommandsView(APIView):
    module = Module.CURTAILMENT
    permission_classes = [ModuleAccess]


def _detail(command) -> dict:
    return CommandDetailSerializer(command).data


class ProposeView(_CommandsView):
    @extend_schema(request=ProposeSerializer, responses={201: CommandDetailSerializer, 200: CommandDetailSerializer})
    def post(self, request):
        """Propose a command: scored, checked by the safety guards, auto-approved when LOW (and the site's
        rules allow it), else pending approval. Re-proposing a live ``dedupe_key`` returns that command (200)."""
        data = _valid(ProposeSerializer, request.data)
        expires = data.get("expires_in_s")
        result = services.command_propose(
            actor=request.user,
            type=data["type"],
            params=data["params"],
            targets=data["targets"],
            site_id=data.get("site"),
            priority=data["priority"],
            dedupe_key=data["dedupe_key"],
            proposer_kind=data["proposer_kind"],
            ai_confidence=data.get("ai_confidence"),
            expires_at=timezone.now() + timedelta(seconds=expires) if expires else None,
        )
        command = selectors.command_get(user=request.user, command_id=result.command.pk)
        return Response(_detail(command), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class PreviewView(_CommandsView):
    @extend_schema(request=ProposeSerializer, responses={200: OpenApiResponse(description="score, tier, approvers")})
    def post(self, request):
        """The risk of a proposal without creating it: score, tier, who must approve, breakdown and any
        refusal of the safety guards."""
        data = _valid(ProposeSerializer, request.data)
        found = services.assess(
            actor=request.user,
            command_type=data["type"],
            params=data["params"],
            targets=data["targets"],
            site_id=data.get("site"),
            proposer_kind=data["proposer_kind"],
            ai_confidence=data.get("ai_confidence"),
        )
        return Response(found.preview())


class CommandDetailView(_CommandsView):
    detail = True

    @extend_schema(operation_id="commands_retrieve", responses={200: CommandDetailSerializer})
    def get(self, request, pk):
        return Response(_detail(selectors.command_get(user=request.user, command_id=pk)))


class _DecisionView(_CommandsView):
    detail = True  # the services decide: hidden → 404, read-only → 403
    service = None

    def post(self, request, pk):
        command = selectors.command_get(user=request.user, command_id=pk)
        data = _valid(DecisionSerializer, request.data)
        command = type(self).service(command=command, actor=request.user, reason=data["reason"])
        return Response(_detail(selectors.command_get(user=request.user, command_id=command.pk)))


@extend_schema(request=DecisionSerializer, responses={200: CommandDetailSerializer})
class ApproveView(_DecisionView):
    service = staticmethod(services.command_approve)

    def post(self, request, pk):
        """Approve (not your own command, once per person); enough distinct approvals → APPROVED."""
        return super().post(request, pk)


@extend_schema(request=DecisionSerializer, responses={200: CommandDetailSerializer})
class DenyView(_DecisionView):
    service = staticmethod(services.command_deny)

    def post(self, request, pk):
        """Deny, with a reason (required)."""
        return super().post(request, pk)


@extend_schema(request=DecisionSerializer, responses={200: CommandDetailSerializer})
class CancelView(_DecisionView):
    service = staticmethod(services.command_cancel)

    def post(self, request, pk):
        """Cancel (the proposer or a manager of the site), only before it is dispatched."""
        return super().post(request, pk)


class RollbackView(_CommandsView):
    detail = True  # the service decides: hidden → 404, read-only → 403

    @extend_schema(request=DecisionSerializer, responses={201: RollbackSerializer})
    def post(self, request, pk):
        """Propose the inverse of a COMPLETED or PARTIAL command (disable ↔ enable, the previous pool, fan or
        power mode, from the state recorded before it ran; only the targets that succeeded), scored and approved
        like any other command. Targets that had different states before need one command each: the answer is
        the first rollback command (as ``propose`` answers) plus ``rollback_group``, the ids of all of them. The
        original becomes ROLLED_BACK once they have run. 409 ``no_inverse`` (restart, curtail), ``not_finished``,
        ``already_rolled_back``, ``rollback_pending``, ``nothing_to_roll_back``, ``no_previous_state``."""
        from commands.rollback import command_rollback

        command = selectors.command_get(user=request.user, command_id=pk)
        data = _valid(DecisionSerializer, request.data)
        result = command_rollback(command=command, actor=request.user, reason=data["reason"])
        body = _detail(selectors.command_get(user=request.user, command_id=result.command.pk))
        body["rollback_group"] = [c.pk for c in result.commands]
        return Response(body, status=status.HTTP_201_CREATED)


class CommandListView(_CommandsView):
    @extend_schema(
        operation_id="commands_list", parameters=[CommandFilterSerializer], responses={200: CommandPageSerializer}
    )
    def get(self, request):
        """Commands of the sites you operate, newest first, in keyset pages: follow ``next`` (or pass
        ``cursor=next_cursor``) with the same filters. ``status``, ``risk_tier`` and ``verification`` take several
        values (repeated or comma-separated); ``type`` accepts legacy names."""
        raw = {key: request.query_params.get(key) for key in request.query_params}
        for key in ("status", "risk_tier", "verification"):
            if key in request.query_params:
                raw[key] = [v for value in request.query_params.getlist(key) for v in value.split(",") if v]
        p = _valid(CommandFilterSerializer, raw)
        qs = selectors.command_list(user=request.user)
        if "site" in p:
            qs = qs.filter(site_id=p["site"])
        if p.get("status"):
            qs = qs.filter(status__in=p["status"])
        if p.get("risk_tier"):
            qs = qs.filter(risk_tier__in=p["risk_tier"])
        if p.get("verification"):
            qs = qs.filter(verification__in=p["verification"])
        if "type" in p:
            try:
                qs = qs.filter(command_type=risk.canonical_type(p["type"]))
            except risk.RiskInputError as exc:
                raise DomainError(exc.code, exc.message, details=exc.as_dict()) from None
        if "proposer" in p:
            qs = qs.filter(proposer_id=p["proposer"])
        if "created_after" in p:
            qs = qs.filter(created_at__gte=p["created_after"])
        if "created_before" in p:
            qs = qs.filter(created_at__lt=p["created_before"])
        page = selectors.command_page(
            qs.select_related("dispatched_to").prefetch_related("targets", "rollbacks"),
            cursor=p.get("cursor"),
            limit=p["limit"],
        )
        next_url = None
        if page.next_cursor:
            query = request.query_params.copy()
            query["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(
            {
                "next_cursor": page.next_cursor,
                "next": next_url,
                "results": CommandSerializer(page.rows, many=True).data,
            }
        )


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


SUCCESSOR = "/api/v1/commands"
SUNSET = "Mon, 01 Jun 2026 00:00:00 GMT"


@csrf_exempt
def legacy_gone(request, *args, **kwargs):
    """The seed's command endpoints passed their sunset (2026-06-01): 410 Gone, pointing at v1."""
    body = error_body("gone", f"This endpoint was retired on 2026-06-01; use {SUCCESSOR}.", {"successor": SUCCESSOR})
    response = JsonResponse(body, status=410)
    response["Link"] = f'<{SUCCESSOR}>; rel="successor-version"'
    response["Sunset"] = SUNSET
    return response


commands_urls = [
    re_path(r"^commands/?$", CommandListView.as_view(), name="command-list"),
    re_path(r"^commands/propose/?$", ProposeView.as_view(), name="command-propose"),
    re_path(r"^commands/preview/?$", PreviewView.as_view(), name="command-preview"),
    re_path(r"^commands/(?P<pk>[0-9]+)/?$", CommandDetailView.as_view(), name="command-detail"),
    re_path(r"^commands/(?P<pk>[0-9]+)/approve/?$", ApproveView.as_view(), name="command-approve"),
    re_path(r"^commands/(?P<pk>[0-9]+)/deny/?$", DenyView.as_view(), name="command-deny"),
    re_path(r"^commands/(?P<pk>[0-9]+)/cancel/?$", CancelView.as_view(), name="command-cancel"),
    re_path(r"^commands/(?P<pk>[0-9]+)/rollback/?$", RollbackView.as_view(), name="command-rollback"),
]

legacy_urls = [
    re_path(r"^sites/(?P<site_id>[0-9]+)/commands/?$", legacy_gone, name="seed-site-commands-gone"),
    re_path(r"^commands/(?P<command_id>[0-9]+)/?$", legacy_gone, name="seed-command-gone"),
    re_path(r"^remote/commands/pending/?$", legacy_gone, name="seed-remote-commands-gone"),
]
