"""User and token admin go through the account services (locked, checked, published), as the API does."""

from unittest import mock

import pytest

from hashinsight.accounts import services
from hashinsight.accounts.models import ApiToken, User
from hashinsight.accounts.roles import Role
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def change_form(user, **changes) -> dict:
    data = {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
        "language": user.language, "role": user.role, "is_active": "on" if user.is_active else "",
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2025-01-01", "date_joined_1": "00:00:00",
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_role_change_in_admin_is_published(client):
    admin_user = UserFactory(role=Role.ADMIN)
    target = UserFactory(role=Role.CLIENT)
    client.force_login(admin_user)
    data = change_form(target, role=Role.MINING_SITE_OWNER)
    response = client.post(f"/admin/accounts/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert User.objects.get(pk=target.pk).role == Role.MINING_SITE_OWNER
    [event] = OutboxEvent.objects.filter(event_type="user.role_changed")
    assert event.payload == {
        "user_id": target.pk, "old_role": Role.CLIENT, "new_role": Role.MINING_SITE_OWNER, "actor_id": admin_user.pk,
    }  # fmt: skip


def test_disabling_in_admin_revokes_tokens(client):
    admin_user = UserFactory(role=Role.ADMIN)
    target = UserFactory(role=Role.CLIENT)
    token, _secret = services.api_token_create(user=target, name="ci")
    client.force_login(admin_user)
    response = client.post(f"/admin/accounts/user/{target.pk}/change/", change_form(target, is_active=""))
    assert response.status_code == 302
    assert User.objects.get(pk=target.pk).is_active is False
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_an_admin_cannot_make_an_owner_in_admin(client):
    admin_user = UserFactory(role=Role.ADMIN)
    target = UserFactory(role=Role.CLIENT)
    client.force_login(admin_user)
    client.post(f"/admin/accounts/user/{target.pk}/change/", change_form(target, role=Role.OWNER))
    assert User.objects.get(pk=target.pk).role == Role.CLIENT


def test_adding_a_user_in_admin_uses_the_service(client):
    client.force_login(UserFactory(role=Role.OWNER))
    with mock.patch("hashinsight.accounts.admin.services.user_create", wraps=services.user_create) as create:
        response = client.post(
            "/admin/accounts/user/add/",
            {"username": "newbie", "role": Role.CLIENT, "usable_password": "true",
             "password1": PASSWORD, "password2": PASSWORD},
        )  # fmt: skip
    assert response.status_code == 302, response.context["errors"] if response.context else response
    created = User.objects.get(username="newbie")
    assert created.role == Role.CLIENT and created.check_password(PASSWORD)
    assert create.call_count == 1


def test_revoking_tokens_in_admin_uses_the_service(client):
    owner = UserFactory(role=Role.OWNER)
    holder = UserFactory(role=Role.CLIENT)
    token, _secret = services.api_token_create(user=holder, name="ci")
    client.force_login(owner)
    with mock.patch("hashinsight.accounts.services.notify_access_changed") as notify:
        response = client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    notify.assert_called_once_with(holder.pk)
