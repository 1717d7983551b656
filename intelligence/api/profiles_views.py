"""The response profiles and demand-response programmes API.

``/api/v1/curtailment/profiles`` (list with filters, sort, pages and CSV; create), ``…/profiles/{id}`` (read, update
with PATCH or PUT, delete), ``…/profiles/{id}/default`` (make it the site's default);
``/api/v1/curtailment/programs`` (list, CSV; create: the answer carries the secret, once), ``…/programs/{id}`` (read,
update name/profile/active, delete), ``…/programs/{id}/rotate`` (a new secret, once).

CURTAILMENT module: READ to read, FULL and a manage grant on the site to change; a hidden site, profile or programme
is a 404, a site seen through a read-only grant a 403. Every read and write goes through
``intelligence.response_profiles``. A secret is in the body of the create and rotate answers only (``no-store``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from hashinsight.portal.tables import CsvColumn, csv_chunks, streamed_csv
from intelligence import response_profiles as rp
from intelligence.api.curtailment_common import CSV_RESPONSE, CurtailmentView, valid
from intelligence.models import CurtailmentMode, CurtailmentPriority, DriftAction

PROFILE_SORTS = {"name": "name", "site": "site__name", "created": "created_at", "updated": "updated_at",
                 "mode": "mode", "target_kw": "target_kw", "id": "id"}  # fmt: skip
PROGRAM_SORTS = {"name": "name", "site": "site__name", "created": "created_at", "slug": "slug",
                 "last_received": "last_received_at", "id": "id"}  # fmt: skip
SIGNATURE_RECIPE = (
    'POST {"event_id": "...", "action": "start"|"end"} to webhook_url with headers X-HashInsight-Timestamp: '
    "<unix seconds> and X-HashInsight-Signature: sha256=<hex HMAC-SHA256(secret, '<timestamp>.<raw body>')>; "
    "the timestamp within 300 s; the key is the secret's text as ASCII."
)


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    site = serializers.IntegerField(help_text="site id (fixed after creation)")
    name = serializers.CharField(max_length=80)
    mode = serializers.ChoiceField(choices=CurtailmentMode.choices, default=CurtailmentMode.FULL_STOP)
    target_kw = serializers.DecimalField(
        max_digits=12, decimal_places=3, allow_null=True, required=False,
        help_text="kW to shed (> 0), required for kw_reduction; null for full_stop",
    )  # fmt: skip
    priority = serializers.ChoiceField(choices=CurtailmentPriority.choices, default=CurtailmentPriority.NORMAL)
    scope = serializers.JSONField(
        required=False,
        help_text='{} for the whole site, or {"kind": "zone|rack|customer|miners", "ids": [...]}: zone ids, rack '
        "names, hosting client ids or miner serials, all on the profile's site",
    )
    min_duration_minutes = serializers.IntegerField(min_value=0, default=15)
    max_duration_minutes = serializers.IntegerField(min_value=1, default=240, help_text="≥ the minimum, ≤ 10080")
    restore_batch_size = serializers.IntegerField(min_value=1, default=50, help_text="miners restored per batch")
    restore_interval_seconds = serializers.IntegerField(min_value=0, default=60, help_text="seconds between batches")
    drift_action = serializers.ChoiceField(choices=DriftAction.choices, default=DriftAction.RECURTAIL)
    is_default = serializers.BooleanField(default=False, help_text="the site's default profile (one per site)")
    created_by = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class ProfilePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ProfileSerializer(many=True)


class ProfileFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False, min_value=1, max_value=rp.MAX_ID)
    mode = serializers.ChoiceField(choices=CurtailmentMode.choices, required=False)
    priority = serializers.ChoiceField(choices=CurtailmentPriority.choices, required=False)
    is_default = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(
        choices=[*PROFILE_SORTS, *(f"-{k}" for k in PROFILE_SORTS)], required=False, default="site",
        help_text="- for descending",
    )  # fmt: skip
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


class ProgramSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    site = serializers.IntegerField(help_text="site id (fixed after creation)")
    name = serializers.CharField(max_length=80)
    slug = serializers.SlugField(required=False, help_text="default: from the name; fixed after creation")
    profile = serializers.IntegerField(help_text="one of the site's response profiles")
    profile_name = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(default=True)
    webhook_url = serializers.URLField(read_only=True)
    last_received_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_by = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)


class ProgramSecretSerializer(ProgramSerializer):
    secret = serializers.CharField(read_only=True, help_text="shown in this answer only")
    signature = serializers.CharField(read_only=True, help_text="how the programme signs its messages")


class ProgramPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ProgramSerializer(many=True)


class ProgramFilterSerializer(serializers.Serializer):
    site = serializers.IntegerField(required=False, min_value=1, max_value=rp.MAX_ID)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(
        choices=[*PROGRAM_SORTS, *(f"-{k}" for k in PROGRAM_SORTS)], required=False, default="site",
        help_text="- for descending",
    )  # fmt: skip
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    offset = serializers.IntegerField(required=False, min_value=0)


def _kw_display(value):
    return "" if value is None else value


PROFILE_CSV = [
    CsvColumn(_("Profile"), "id"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Name"), "name"),
    CsvColumn(_("Mode"), "mode", display=dict(CurtailmentMode.choices)),
    CsvColumn(_("Reduction (kW)"), "target_kw", display=_kw_display),
    CsvColumn(_("Priority"), "priority", display=dict(CurtailmentPriority.choices)),
    CsvColumn(_("Scope"), "scope", display=lambda s: (s or {}).get("kind", "site")),
    CsvColumn(_("Minimum duration (min)"), "min_duration_minutes"),
    CsvColumn(_("Maximum duration (min)"), "max_duration_minutes"),
    CsvColumn(_("Restore batch (miners)"), "restore_batch_size"),
    CsvColumn(_("Restore interval (s)"), "restore_interval_seconds"),
    CsvColumn(_("On drift"), "drift_action", display=dict(DriftAction.choices)),
    CsvColumn(_("Site default"), "is_default"),
    CsvColumn(_("Updated (UTC)"), "updated_at"),
]
PROGRAM_CSV = [
    CsvColumn(_("Programme"), "id"),
    CsvColumn(_("Site"), "site__name"),
    CsvColumn(_("Name"), "name"),
    CsvColumn(_("Slug"), "slug"),
    CsvColumn(_("Webhook path"), "slug", display=lambda s: rp.WEBHOOK_PATH.format(slug=s)),
    CsvColumn(_("Response profile"), "profile__name"),
    CsvColumn(_("Active"), "is_active"),
    CsvColumn(_("Last message (UTC)"), "last_received_at"),
    CsvColumn(_("Created (UTC)"), "created_at"),
]


def _ordered(qs, sort: str, sorts: dict):
    field = sorts[sort.lstrip("-")]
    return qs.order_by(f"-{field}" if sort.startswith("-") else field, "name", "id")


def filtered_profiles(qs, p: dict):
    for key in ("site", "mode", "priority"):
        if p.get(key) not in (None, ""):
            qs = qs.filter(**{"site_id" if key == "site" else key: p[key]})
    if p.get("is_default") is not None:
        qs = qs.filter(is_default=p["is_default"])
    return _ordered(qs, p.get("sort") or "site", PROFILE_SORTS)


def filtered_programs(qs, p: dict):
    if p.get("site") is not None:
        qs = qs.filter(site_id=p["site"])
    if p.get("is_active") is not None:
        qs = qs.filter(is_active=p["is_active"])
    return _ordered(qs, p.get("sort") or "site", PROGRAM_SORTS)


def _secret_response(request, program, secret: str, code: int) -> Response:
    body = {**rp.program_body(program, request=request), "secret": secret, "signature": SIGNATURE_RECIPE}
    response = Response(body, status=code)
    response["Cache-Control"] = "no-store"  # the secret is in this answer only: no cache keeps it
    return response


class ProfileListView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_profiles_list", parameters=[ProfileFilterSerializer],
        responses={200: ProfilePageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request):
        """Response profiles of the sites you see (``sort``: name, site, created, updated, mode, target_kw, id;
        ``-`` for descending), filtered by ``site``, ``mode``, ``priority``, ``is_default``, in ``limit``/``offset``
        pages; ``?format=csv`` exports every matching row."""
        p = valid(ProfileFilterSerializer, request.query_params)
        qs = filtered_profiles(rp.profile_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(PROFILE_CSV, qs), "response-profiles")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([rp.profile_body(x) for x in page])

    @extend_schema(
        operation_id="curtailment_profiles_create", request=ProfileSerializer, responses={201: ProfileSerializer},
        tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """Save a profile on a site you manage. Bad input → 400 naming the field (``details.field``): durations
        min ≤ max, batch ≥ 1, interval ≥ 0, kW > 0 for kw_reduction, the scope well-formed and on the site, the
        name unique on the site. ``is_default`` takes the default from the site's previous one."""
        profile = rp.profile_create(actor=request.user, data=request.data)
        return Response(rp.profile_body(profile), status=status.HTTP_201_CREATED)


class ProfileDetailView(CurtailmentView):
    detail = True  # the service decides: hidden → 404, read-only grant → 403

    @extend_schema(operation_id="curtailment_profiles_retrieve", responses={200: ProfileSerializer},
                   tags=["curtailment"])  # fmt: skip
    def get(self, request, pk):
        return Response(rp.profile_body(rp.profile_get(user=request.user, profile_id=pk)))

    @extend_schema(operation_id="curtailment_profiles_update", request=ProfileSerializer,
                   responses={200: ProfileSerializer}, tags=["curtailment"])  # fmt: skip
    def patch(self, request, pk):
        """Change the fields given; the rest stay. The same checks as creation."""
        profile = rp.profile_get(user=request.user, profile_id=pk)
        return Response(rp.profile_body(rp.profile_update(actor=request.user, profile=profile, data=request.data)))

    @extend_schema(operation_id="curtailment_profiles_replace", request=ProfileSerializer,
                   responses={200: ProfileSerializer}, tags=["curtailment"])  # fmt: skip
    def put(self, request, pk):
        return self.patch(request, pk)

    @extend_schema(operation_id="curtailment_profiles_destroy", responses={204: None}, tags=["curtailment"])
    def delete(self, request, pk):
        """Delete a profile; one a demand-response programme uses → 409 ``profile_in_use``."""
        profile = rp.profile_get(user=request.user, profile_id=pk)
        rp.profile_delete(actor=request.user, profile=profile)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileDefaultView(CurtailmentView):
    detail = True

    @extend_schema(operation_id="curtailment_profiles_make_default", request=None,
                   responses={200: ProfileSerializer}, tags=["curtailment"])  # fmt: skip
    def post(self, request, pk):
        """Make the profile its site's default (the previous default loses it)."""
        profile = rp.profile_get(user=request.user, profile_id=pk)
        return Response(rp.profile_body(rp.profile_set_default(actor=request.user, profile=profile)))


class ProgramListView(CurtailmentView):
    @extend_schema(
        operation_id="curtailment_programs_list", parameters=[ProgramFilterSerializer],
        responses={200: ProgramPageSerializer, (200, "text/csv"): CSV_RESPONSE}, tags=["curtailment"],
    )  # fmt: skip
    def get(self, request):
        """Demand-response programmes of the sites you see, with their webhook URL and last message (never their
        secret); filters ``site``, ``is_active``; ``sort``; ``?format=csv``."""
        p = valid(ProgramFilterSerializer, request.query_params)
        qs = filtered_programs(rp.program_list(user=request.user), p)
        if self.wants_csv():
            return streamed_csv(request, csv_chunks(PROGRAM_CSV, qs), "dr-programmes")
        pager = Pagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response([rp.program_body(x, request=request) for x in page])

    @extend_schema(
        operation_id="curtailment_programs_create", request=ProgramSerializer,
        responses={201: ProgramSecretSerializer}, tags=["curtailment"],
    )  # fmt: skip
    def post(self, request):
        """Register a programme on a site you manage, answering with its webhook URL and its **secret, shown in
        this answer only** (stored sealed; rotate to get a new one) and the signature recipe."""
        program, secret = rp.program_create(actor=request.user, data=request.data)
        return _secret_response(request, program, secret, status.HTTP_201_CREATED)


class ProgramDetailView(CurtailmentView):
    detail = True

    @extend_schema(operation_id="curtailment_programs_retrieve", responses={200: ProgramSerializer},
                   tags=["curtailment"])  # fmt: skip
    def get(self, request, pk):
        return Response(rp.program_body(rp.program_get(user=request.user, program_id=pk), request=request))

    @extend_schema(operation_id="curtailment_programs_update", request=ProgramSerializer,
                   responses={200: ProgramSerializer}, tags=["curtailment"])  # fmt: skip
    def patch(self, request, pk):
        """Change ``name``, ``profile`` or ``is_active`` (an inactive programme's webhook is refused)."""
        program = rp.program_get(user=request.user, program_id=pk)
        program = rp.program_update(actor=request.user, program=program, data=request.data)
        return Response(rp.program_body(program, request=request))

    @extend_schema(operation_id="curtailment_programs_destroy", responses={204: None}, tags=["curtailment"])
    def delete(self, request, pk):
        program = rp.program_get(user=request.user, program_id=pk)
        rp.program_delete(actor=request.user, program=program)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProgramRotateView(CurtailmentView):
    detail = True

    @extend_schema(operation_id="curtailment_programs_rotate", request=None,
                   responses={200: ProgramSecretSerializer}, tags=["curtailment"])  # fmt: skip
    def post(self, request, pk):
        """A new secret, shown in this answer only; the old one stops working at once."""
        program = rp.program_get(user=request.user, program_id=pk)
        program, secret = rp.program_rotate(actor=request.user, program=program)
        return _secret_response(request, program, secret, status.HTTP_200_OK)
