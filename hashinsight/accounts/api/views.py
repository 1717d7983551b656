from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from hashinsight.accounts import selectors, services
from hashinsight.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    MeSerializer,
    UserSerializer,
)
from hashinsight.accounts.models import ApiToken
from hashinsight.accounts.roles import Module
from hashinsight.core.api.views import ScopedViewSet


class MeView(generics.RetrieveUpdateAPIView):
    """The signed-in user, with their access level per module."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return self.request.user


class UserViewSet(ScopedViewSet):
    """User accounts (owners and admins). DELETE disables an account and revokes its tokens."""

    module = Module.USER
    serializer_class = UserSerializer
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering_fields = ["username", "date_joined", "last_login"]
    filterset_fields = ["role", "is_active"]

    def get_queryset(self):
        return selectors.user_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.user_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.user_update(
            actor=self.request.user, user=serializer.instance, **serializer.validated_data
        )

    def destroy(self, request, *args, **kwargs):
        """Accounts are disabled, not deleted, so the audit trail keeps its actors."""
        services.user_deactivate(actor=request.user, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. The secret is returned once, on creation; DELETE revokes."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticated]
    throttle_scope = "token_create"

    def get_throttles(self):
        from rest_framework.throttling import ScopedRateThrottle

        return [ScopedRateThrottle()] if self.action == "create" else []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return selectors.api_token_list(user=self.request.user)

    @extend_schema(responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, full = services.api_token_create(user=request.user, **serializer.validated_data)
        body = ApiTokenCreatedSerializer(token).data | {"token": full}
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.api_token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
