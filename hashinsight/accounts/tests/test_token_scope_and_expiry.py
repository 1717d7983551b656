"""Token scope (read-only tokens may not write) and expiry, through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hashinsight.accounts.models import ApiToken
from hashinsight.accounts.services import api_token_create
from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_read_only_token_reads_but_is_refused_on_every_unsafe_method(api):
    user = UserFactory(role="OWNER")
    _, full = api_token_create(user=user, name="dashboards", scope=ApiToken.Scope.READ)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {full}"}
    assert api.get("/api/v1/me", **auth).status_code == 200
    email = user.email

    for method in ("post", "patch", "put", "delete"):
        response = getattr(api, method)("/api/v1/tokens", {"name": "more"}, format="json", **auth)
        assert response.status_code == 403, method
        assert response.json()["error_code"] == "token_read_only"
        assert set(response.json()) == {"error_code", "message", "request_id", "details"}
    refused = api.patch("/api/v1/me", {"email": "changed@example.test"}, format="json", **auth)
    assert refused.status_code == 403 and refused.json()["error_code"] == "token_read_only"

    user.refresh_from_db()
    assert user.email == email
    assert list(ApiToken.objects.filter(user=user).values_list("name", flat=True)) == ["dashboards"]


def test_read_write_token_may_write(api):
    user = UserFactory(role="CUSTOMER")
    _, full = api_token_create(user=user, name="sync", scope=ApiToken.Scope.READ_WRITE)
    response = api.patch(
        "/api/v1/me", {"email": "new@example.test"}, format="json", HTTP_AUTHORIZATION=f"Bearer {full}"
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.email == "new@example.test"


def test_expired_token_is_rejected(api):
    user = UserFactory(role="CUSTOMER")
    token, full = api_token_create(user=user, name="short", expires_at=timezone.now() + timedelta(days=1))
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}")
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "authentication_failed"


def test_api_creates_tokens_with_scope_and_expiry(api):
    user = UserFactory(role="CLIENT")
    api.force_authenticate(user)
    expires = timezone.now() + timedelta(days=30)
    created = api.post(
        "/api/v1/tokens", {"name": "ro", "scope": "read", "expires_at": expires.isoformat()}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["scope"] == "read" and body["token"].startswith(f"hi_{body['prefix']}_")
    stored = ApiToken.objects.get(pk=body["id"])
    assert stored.scope == ApiToken.Scope.READ
    assert abs(stored.expires_at - expires) < timedelta(seconds=1)
    # Without a scope the API keeps its old meaning (read-write), so existing clients are unaffected.
    default = api.post("/api/v1/tokens", {"name": "rw"}, format="json").json()
    assert ApiToken.objects.get(pk=default["id"]).scope == ApiToken.Scope.READ_WRITE


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"name": "x", "scope": "admin"}, "validation_error"),
        ({"name": "x", "expires_at": "2000-01-01T00:00:00Z"}, "token_expiry_past"),
    ],
)
def test_api_refuses_bad_scope_or_past_expiry(api, payload, code):
    user = UserFactory(role="CLIENT")
    api.force_authenticate(user)
    response = api.post("/api/v1/tokens", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert not ApiToken.objects.filter(user=user).exists()


def test_service_refuses_a_past_expiry():
    user = UserFactory()
    with pytest.raises(DomainError) as exc:
        api_token_create(user=user, name="x", expires_at=timezone.now() - timedelta(minutes=1))
    assert exc.value.code == "token_expiry_past"
    assert not ApiToken.objects.filter(user=user).exists()
