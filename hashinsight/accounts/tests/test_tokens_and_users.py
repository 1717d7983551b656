import pytest

from hashinsight.accounts.models import ApiToken, User, hash_secret
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_token_is_shown_once_stored_hashed_and_revocable(api):
    user = UserFactory(role="MINING_SITE_OWNER")
    api.force_authenticate(user)
    created = api.post("/api/v1/tokens", {"name": "grafana"}, format="json")
    assert created.status_code == 201
    full = created.json()["token"]
    prefix = created.json()["prefix"]
    assert full.startswith(f"hi_{prefix}_")
    stored = ApiToken.objects.get(prefix=prefix)
    assert stored.secret_hash == hash_secret(full.split("_", 2)[2])
    assert full.split("_", 2)[2] not in str(api.get("/api/v1/tokens").content)

    api.force_authenticate(None)
    me = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}")
    assert me.status_code == 200 and me.json()["username"] == user.username
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    api.force_authenticate(user)
    assert api.delete(f"/api/v1/tokens/{stored.pk}").status_code == 204
    api.force_authenticate(None)
    refused = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}")
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "authentication_failed"


@pytest.mark.parametrize("header", ["Bearer hi_nope_nope", "Bearer garbage", "Token hi__", "Bearer a b"])
def test_bad_tokens_get_a_clear_401(api, header):
    response = api.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()) == {"error_code", "message", "request_id", "details"}


def test_other_users_tokens_are_hidden(api):
    a, b = UserFactory(), UserFactory()
    api.force_authenticate(a)
    token_id = api.post("/api/v1/tokens", {"name": "a"}, format="json").json()["id"]
    api.force_authenticate(b)
    assert api.delete(f"/api/v1/tokens/{token_id}").status_code == 404
    assert ApiToken.objects.get(pk=token_id).revoked_at is None


def test_admin_manages_users_but_not_admins_or_owners(api):
    admin = UserFactory(role="ADMIN")
    other_admin = UserFactory(role="ADMIN")
    client = UserFactory(role="CLIENT")
    api.force_authenticate(admin)
    assert api.patch(f"/api/v1/users/{client.pk}", {"email": "c@example.test"}, format="json").status_code == 200
    assert User.objects.get(pk=client.pk).email == "c@example.test"
    other_email = other_admin.email
    refused = api.patch(f"/api/v1/users/{other_admin.pk}", {"email": "x@example.test"}, format="json")
    assert refused.status_code == 403 and refused.json()["error_code"] == "role_forbidden"
    assert User.objects.get(pk=other_admin.pk).email == other_email
    promote = api.patch(f"/api/v1/users/{client.pk}", {"role": "OWNER"}, format="json")
    assert promote.status_code == 403
    assert User.objects.get(pk=client.pk).role == "CLIENT"
    created = api.post("/api/v1/users", {"username": "newbie", "role": "CLIENT", "password": "weak"}, format="json")
    assert created.status_code == 400
    assert "password" in str(created.json()["details"]) or created.json()["error_code"] == "validation_error"
    assert not User.objects.filter(username="newbie").exists()


def test_owner_creates_admin_and_disabling_revokes_tokens(api):
    owner = UserFactory(role="OWNER")
    api.force_authenticate(owner)
    response = api.post(
        "/api/v1/users", {"username": "ops2", "role": "ADMIN", "password": "long-enough-passphrase-1"}, format="json"
    )
    assert response.status_code == 201
    new_id = response.json()["id"]
    created = User.objects.get(pk=new_id)
    assert (created.username, created.role, created.is_active) == ("ops2", "ADMIN", True)
    assert created.check_password("long-enough-passphrase-1")

    api.force_authenticate(created)
    full = api.post("/api/v1/tokens", {"name": "ci"}, format="json").json()["token"]
    api.force_authenticate(None)
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 200

    api.force_authenticate(UserFactory(role="CLIENT"))
    assert api.get("/api/v1/users").status_code == 403
    api.force_authenticate(owner)
    assert api.delete(f"/api/v1/users/{new_id}").status_code == 204

    assert User.objects.get(pk=new_id).is_active is False
    assert ApiToken.objects.get(user_id=new_id).revoked_at is not None
    api.force_authenticate(None)
    refused = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}")
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "authentication_failed"


def test_me_reports_access_per_module(api):
    api.force_authenticate(UserFactory(role="CLIENT"))
    access = api.get("/api/v1/me").json()["access"]
    assert access["HOSTING"] == "READ" and access["CURTAILMENT"] == "NONE" and access["BASIC"] == "FULL"
