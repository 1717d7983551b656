"""The "API tokens" page: create (secret shown once), list, revoke; who sees and revokes whose tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from hashinsight.accounts.models import ApiToken, hash_secret
from hashinsight.accounts.services import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db


def _secret_in(html: str) -> str | None:
    match = re.search(r'value="(hi_[0-9a-f]{8}_[A-Za-z0-9_\-]+)"', html)
    return match.group(1) if match else None


def _prefixes(html: str) -> set[str]:
    return set(re.findall(r'data-testid="token-row" data-prefix="([0-9a-f]+)"', html))


def test_signed_out_visitors_are_sent_to_login(client):
    response = client.get("/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post("/tokens/", {"name": "x", "expiry": "30", "scope": "read"}).status_code == 302
    assert not ApiToken.objects.exists()


def test_create_shows_the_secret_once_and_it_works(client, api, farm):
    user = farm.users["client_x"]
    client.force_login(user)
    response = client.post("/tokens/", {"name": "Grafana", "expiry": "90", "scope": "read"})
    assert response.status_code == 302 and response["Location"] == "/tokens/"

    token = ApiToken.objects.get(user=user)
    assert token.name == "Grafana" and token.scope == ApiToken.Scope.READ and token.revoked_at is None
    assert timedelta(days=89, hours=23) < token.expires_at - timezone.now() <= timedelta(days=90)

    assert client.head("/tokens/").status_code == 200  # a HEAD does not consume the one showing
    page = client.get("/tokens/")
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    secret = _secret_in(page.content.decode())
    assert secret is not None and secret.startswith(f"hi_{token.prefix}_")
    assert token.secret_hash == hash_secret(secret.split("_", 2)[2])
    assert 'data-testid="copy-token"' in page.content.decode()

    # A reload never shows it again (only the prefix stays on the page).
    again = client.get("/tokens/").content.decode()
    assert _secret_in(again) is None and secret not in again
    assert _prefixes(again) == {token.prefix}

    # The secret is a working, read-only credential.
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["username"] == "client_x"
    assert (
        api.post("/api/v1/tokens", {"name": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {secret}").json()[
            "error_code"
        ]
        == "token_read_only"
    )


@pytest.mark.parametrize(
    "form, field",
    [
        ({"name": "", "expiry": "30", "scope": "read"}, "name"),
        ({"name": "   ", "expiry": "30", "scope": "read"}, "name"),
        ({"name": "x", "expiry": "7", "scope": "read"}, "expiry"),
        ({"name": "x", "expiry": "30", "scope": "admin"}, "scope"),
        ({"name": "x", "expiry": "date", "expires_on": "", "scope": "read"}, "expires_on"),
        ({"name": "x", "expiry": "date", "expires_on": "2001-01-01", "scope": "read"}, "expires_on"),
        ({"name": "x", "expiry": "date", "expires_on": "not-a-date", "scope": "read"}, "expires_on"),
        ({"name": "x" * 101, "expiry": "30", "scope": "read"}, "name"),
    ],
)
def test_bad_input_is_shown_and_creates_nothing(client, farm, form, field):
    client.force_login(farm.users["customer"])
    response = client.post("/tokens/", form)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'name="{field}"' in html and "is-invalid" in html
    errors = response.context["create_form"].errors
    assert list(errors) == [field] and len(errors[field]) == 1  # one error, on the field at fault
    assert not ApiToken.objects.exists()


def test_expiry_choices(client, farm):
    user = farm.users["customer"]
    client.force_login(user)
    on = (timezone.now() + timedelta(days=10)).date()
    client.post("/tokens/", {"name": "dated", "expiry": "date", "expires_on": on.isoformat(), "scope": "read_write"})
    client.post("/tokens/", {"name": "forever", "expiry": "never", "scope": "read"})
    dated, forever = ApiToken.objects.get(name="dated"), ApiToken.objects.get(name="forever")
    assert dated.expires_at == datetime(on.year, on.month, on.day, tzinfo=UTC)
    assert dated.scope == ApiToken.Scope.READ_WRITE
    assert forever.expires_at is None


def test_list_shows_own_tokens_with_their_status(client, farm):
    user = farm.users["customer"]
    active, _ = api_token_create(user=user, name="active one")
    revoked, _ = api_token_create(user=user, name="revoked one")
    api_token_revoke(token=revoked, actor=user)
    expired, _ = api_token_create(user=user, name="expired one", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    others, _ = api_token_create(user=farm.users["customer2"], name="not mine")
    client.force_login(user)

    html = client.get("/tokens/").content.decode()
    assert _prefixes(html) == {active.prefix, revoked.prefix, expired.prefix}
    assert "not mine" not in html and others.prefix not in html
    assert 'data-testid="sort-user"' not in html  # no owner column for a user who sees only their own
    rows = dict(re.findall(r'data-prefix="([0-9a-f]+)">.*?data-testid="token-status"><span[^>]*>([^<]+)<', html, re.S))
    assert rows == {active.prefix: "Active", revoked.prefix: "Revoked", expired.prefix: "Expired"}
    assert _prefixes(client.get("/tokens/?status=active").content.decode()) == {active.prefix}
    assert _prefixes(client.get("/tokens/?status=revoked").content.decode()) == {revoked.prefix}
    assert _prefixes(client.get("/tokens/?q=expired").content.decode()) == {expired.prefix}
    # A filter value the page cannot use is named, not silently ignored.
    bad = client.get("/tokens/?status=weird")
    assert bad.status_code == 200 and 'data-testid="table-problem"' in bad.content.decode()


def test_user_revokes_own_token(client, api, farm):
    user = farm.users["client_x"]
    token, full = api_token_create(user=user, name="old")
    client.force_login(user)
    response = client.post(f"/tokens/{token.pk}/revoke/", {"query": "status=active"})
    assert response.status_code == 302 and response["Location"] == "/tokens/?status=active"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 401
    # A repeat changes nothing.
    revoked_at = token.revoked_at
    client.post(f"/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at == revoked_at


def test_revoke_needs_post_and_csrf(farm):
    from django.test import Client

    user = farm.users["client_x"]
    token, _ = api_token_create(user=user, name="t")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.get(f"/tokens/{token.pk}/revoke/").status_code == 405
    assert strict.post(f"/tokens/{token.pk}/revoke/").status_code == 403
    assert strict.post("/tokens/", {"name": "x", "expiry": "30", "scope": "read"}).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.objects.filter(user=user).count() == 1


def test_client_cannot_see_or_revoke_someone_elses_token(client, farm):
    theirs, _ = api_token_create(user=farm.users["client_y"], name="theirs")
    client.force_login(farm.users["client_x"])
    assert theirs.prefix not in client.get("/tokens/").content.decode()
    assert client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post("/tokens/999999/revoke/").status_code == 404  # the same answer as a missing one
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_owner_sees_and_revokes_everyones_tokens(client, api, farm):
    admin_token, admin_full = api_token_create(user=farm.users["admin"], name="admin's")
    client_token, _ = api_token_create(user=farm.users["client_x"], name="client's")
    own, _ = api_token_create(user=farm.users["owner"], name="mine")
    client.force_login(farm.users["owner"])
    html = client.get("/tokens/").content.decode()
    assert _prefixes(html) == {admin_token.prefix, client_token.prefix, own.prefix}
    assert 'data-testid="sort-user"' in html and "client_x" in html
    assert _prefixes(client.get("/tokens/?q=client_x").content.decode()) == {client_token.prefix}

    assert client.post(f"/tokens/{admin_token.pk}/revoke/").status_code == 302
    assert client.post(f"/tokens/{client_token.pk}/revoke/").status_code == 302
    admin_token.refresh_from_db()
    client_token.refresh_from_db()
    assert admin_token.revoked_at is not None and client_token.revoked_at is not None
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {admin_full}").status_code == 401


def test_admin_revokes_clients_tokens_but_not_the_owners(client, farm):
    # As for user accounts (roles.can_manage_role): an admin manages every role but owners and admins.
    owner_token, _ = api_token_create(user=farm.users["owner"], name="owner's")
    client_token, _ = api_token_create(user=farm.users["client_x"], name="client's")
    client.force_login(farm.users["admin"])
    html = client.get("/tokens/").content.decode()
    assert client_token.prefix in html and owner_token.prefix not in html
    assert client.post(f"/tokens/{owner_token.pk}/revoke/").status_code == 404
    assert client.post(f"/tokens/{client_token.pk}/revoke/").status_code == 302
    owner_token.refresh_from_db()
    client_token.refresh_from_db()
    assert owner_token.revoked_at is None and client_token.revoked_at is not None


def test_csv_export_lists_tokens_without_secrets(client, farm):
    user = farm.users["customer"]
    token, full = api_token_create(user=user, name="exported")
    client.force_login(user)
    response = client.get("/tokens/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert "exported" in body and token.prefix in body
    assert full.split("_", 2)[2] not in body and token.secret_hash not in body


# Whose tokens each user sees and may revoke on /tokens/, written out by hand (not derived from the code):
# an owner everyone's, an admin everyone's but the owner's (as for the accounts themselves), the rest their own.
ALL_USERS = [
    "owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "client_y", "customer", "customer2", "guest",
]  # fmt: skip
TOKENS_VISIBLE = {
    "owner": set(ALL_USERS),
    "admin": set(ALL_USERS) - {"owner"},
    **{name: {name} for name in ALL_USERS if name not in ("owner", "admin")},
}


@pytest.mark.parametrize("viewer", ALL_USERS)
def test_token_page_matrix(client, api, farm, viewer):
    tokens = {name: api_token_create(user=farm.users[name], name=f"{name}'s")[0] for name in ALL_USERS}
    client.force_login(farm.users[viewer])
    shown = _prefixes(client.get("/tokens/").content.decode())
    assert shown == {tokens[name].prefix for name in TOKENS_VISIBLE[viewer]}
    # The API lists only your own, whoever you are.
    api.force_authenticate(farm.users[viewer])
    assert {t["prefix"] for t in api.get("/api/v1/tokens").json()["results"]} == {tokens[viewer].prefix}
    for name, token in tokens.items():
        status = client.post(f"/tokens/{token.pk}/revoke/").status_code
        token.refresh_from_db()
        if name in TOKENS_VISIBLE[viewer]:
            assert status == 302 and token.revoked_at is not None, name
        else:
            assert status == 404 and token.revoked_at is None, name
