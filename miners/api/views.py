from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core import cache as cache_helper
from hashinsight.core.api import parsers
from hashinsight.core.api.views import ScopedViewSet
from hashinsight.core.errors import DomainError
from miners import bulk_import, selectors, services
from miners.api.filtersets import MinerFilter
from miners.api.serializers import (
    BulkImportResultSerializer,
    MinerDetailSerializer,
    MinerListSerializer,
    MinerModelSerializer,
    MinerWriteSerializer,
    PortfolioEntrySerializer,
)


class MinerModelViewSet(viewsets.ModelViewSet):
    """The ASIC catalog: readable by every signed-in user, edited by system administrators."""

    serializer_class = MinerModelSerializer
    queryset = selectors.miner_model_list()
    permission_classes = [IsAuthenticated]
    search_fields = ["vendor", "name", "code"]
    ordering_fields = ["vendor", "name", "hashrate_ths", "power_w"]
    filterset_fields = ["vendor", "cooling"]

    def check_permissions(self, request):
        super().check_permissions(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not has_access(
            request.user, Module.SYSTEM, Access.FULL
        ):
            self.permission_denied(request, message="Only system administrators edit the catalog.")

    # Writes go through the services so every portfolio and site summary using the model is refreshed.
    def perform_create(self, serializer):
        serializer.instance = services.miner_model_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.miner_model_update(
            actor=self.request.user, miner_model=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.miner_model_delete(actor=self.request.user, miner_model=instance)


class MinerViewSet(ScopedViewSet):
    """Miners you can see. Lists never include network identity; the detail view shows it to site managers."""

    module = Module.HOSTING
    filterset_class = MinerFilter
    search_fields = ["serial", "asset_tag", "pool_worker", "rack"]
    ordering_fields = ["id", "serial", "status", "created_at", "rack"]
    ordering = ["id"]

    def get_queryset(self):
        qs = selectors.miner_list(user=self.request.user)
        # Lists never show the sealed identity, so they never load it (it is the widest column).
        return qs.defer("identity_sealed") if self.action == "list" else qs

    def get_serializer_class(self):
        if self.action == "list":
            return MinerListSerializer
        if self.action in ("create", "update", "partial_update"):
            return MinerWriteSerializer
        return MinerDetailSerializer

    def _detail(self, miner, code=status.HTTP_200_OK):
        miner = self.get_queryset().get(pk=miner.pk)
        return Response(MinerDetailSerializer(miner, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=MinerWriteSerializer, responses={201: MinerDetailSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        miner = services.miner_create(actor=request.user, **serializer.validated_data)
        return self._detail(miner, status.HTTP_201_CREATED)

    @extend_schema(request=MinerWriteSerializer, responses={200: MinerDetailSerializer})
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        miner = services.miner_update(actor=request.user, miner=serializer.instance, **serializer.validated_data)
        return self._detail(miner)

    def perform_destroy(self, instance):
        services.miner_delete(actor=self.request.user, miner=instance)

    @extend_schema(
        request={
            "text/csv": OpenApiTypes.BINARY,
            "application/json": OpenApiTypes.OBJECT,
            "multipart/form-data": OpenApiTypes.OBJECT,
        },
        responses={201: BulkImportResultSerializer},
        description="Import up to 10,000 miners from CSV (body or multipart `file`) or JSON; all rows or none.",
    )
    @action(
        detail=False,
        methods=["post"],
        parser_classes=[parsers.JSONParser, MultiPartParser, FormParser, parsers.RawBodyParser],
    )
    def bulk(self, request):
        parsed = self._parse_bulk(request)
        created = bulk_import.miners_bulk_import(actor=request.user, parsed=parsed)
        ids = [m.pk for m in created if m.pk is not None]
        body = {"created": len(created), "first_id": min(ids, default=None), "last_id": max(ids, default=None)}
        return Response(body, status=status.HTTP_201_CREATED)

    @staticmethod
    def _parse_bulk(request):
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return bulk_import.parse_json(request.data)
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            upload = request.FILES.get("file")
            if upload is None:
                raise DomainError("missing_file", "Send the CSV as a multipart field named 'file'.")
            data = upload.read()
            if (upload.name or "").lower().endswith(".json"):
                try:
                    return bulk_import.parse_json(parsers.loads(data))
                except parsers.NulCharacter:
                    raise
                except exceptions.ParseError:
                    raise DomainError("malformed_json", "The JSON file could not be parsed.") from None
            return bulk_import.parse_csv(data)
        if content_type in ("text/csv", "application/csv", "text/plain", "application/octet-stream", ""):
            # An empty body never reaches the parser: DRF hands over an empty dict instead of b"".
            body = request.data if isinstance(request.data, bytes) else b""
            return bulk_import.parse_csv(body)
        raise DomainError(
            "unsupported_media_type",
            f"Send text/csv, application/json or multipart/form-data, not {content_type}.",
            status=415,
        )


class PortfolioViewSet(ScopedViewSet):
    """An app customer's own miners (the seed's user_miners), by model and quantity."""

    module = Module.BASIC
    serializer_class = PortfolioEntrySerializer
    ordering_fields = ["id", "quantity", "created_at"]
    filterset_fields = ["model"]

    def get_queryset(self):
        return selectors.portfolio_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.portfolio_entry_create(user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.portfolio_entry_update(entry=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.portfolio_entry_delete(entry=instance)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """Your portfolio's TH/s, kW and estimated daily revenue, cost and profit (cached;
        ``X-Cache`` says hit, miss, stale or bypass)."""
        result = cache_helper.get("user_portfolio", id=request.user.pk)
        return Response(result.value, headers={"X-Cache": result.state})
