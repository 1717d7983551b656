"""Account services: who may create, change and disable whom, and what each write leaves in the
database (every test re-reads the rows it expects to change, or not to change)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from hashinsight.accounts import services
from hashinsight.accounts.models import ApiToken, User, hash_secret
from hashinsight.core.errors import DomainError
from hashinsight.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "a-long-enough-passphrase-7"


def tokens_of(user, n=2):
    return [services.api_token_create(user=user, name=f"t{i}")[0] for i in range(n)]


# user_create ------------------------------------------------------------------------------------


def test_owner_creates_an_admin_with_a_hashed_password():
    owner = UserFactory(role="OWNER")
    created = services.user_create(
        actor=owner, username="ops", password=GOOD_PASSWORD, role="ADMIN", email="ops@example.test", first_name="Ada"
    )
    stored = User.objects.get(pk=created.pk)
    assert (stored.username, stored.role, stored.email, stored.first_name) == (
        "ops",
        "ADMIN",
        "ops@example.test",
        "Ada",
    )
    assert stored.password != GOOD_PASSWORD
    assert stored.check_password(GOOD_PASSWORD)


@pytest.mark.parametrize(
    ("actor_role", "role"), [("ADMIN", "ADMIN"), ("ADMIN", "OWNER"), ("MINING_SITE_OWNER", "CLIENT")]
)
def test_create_beyond_ones_rights_is_refused_and_writes_nothing(actor_role, role):
    actor = UserFactory(role=actor_role)
    before = User.objects.count()
    with pytest.raises(DomainError) as refused:
        services.user_create(actor=actor, username="x", password=GOOD_PASSWORD, role=role)
    assert (refused.value.code, refused.value.status) == ("role_forbidden", 403)
    assert refused.value.message == f"You may not manage users with the role {role}."
    assert User.objects.count() == before


def test_admin_creates_a_client():
    admin = UserFactory(role="ADMIN")
    user = services.user_create(actor=admin, username="c1", password=GOOD_PASSWORD, role="CLIENT")
    stored = User.objects.get(pk=user.pk)
    assert (stored.role, stored.email) == ("CLIENT", "")  # no e-mail given: none stored


def test_a_password_like_the_username_is_refused():
    # The similarity check needs the user being created or changed, not only the password.
    owner = UserFactory(role="OWNER")
    with pytest.raises(ValidationError):
        services.user_create(actor=owner, username="marvellous-engineer", password="marvellous-engineer", role="CLIENT")
    assert not User.objects.filter(username="marvellous-engineer").exists()
    client = UserFactory(role="CLIENT", username="splendid-operator")
    with pytest.raises(ValidationError):
        services.user_update(actor=owner, user=client, password="splendid-operator")
    assert User.objects.get(pk=client.pk).check_password(PASSWORD)


def test_weak_password_is_refused_and_writes_nothing():
    owner = UserFactory(role="OWNER")
    before = User.objects.count()
    with pytest.raises(ValidationError):
        services.user_create(actor=owner, username="weakling", password="123", role="CLIENT")
    assert User.objects.count() == before
    assert not User.objects.filter(username="weakling").exists()


# user_update ------------------------------------------------------------------------------------


def test_update_changes_fields_and_password():
    admin = UserFactory(role="ADMIN")
    client = UserFactory(role="CLIENT", email="old@example.test")
    services.user_update(actor=admin, user=client, email="new@example.test", password=GOOD_PASSWORD)
    stored = User.objects.get(pk=client.pk)
    assert stored.email == "new@example.test"
    assert stored.check_password(GOOD_PASSWORD)
    assert not stored.check_password(PASSWORD)


def test_update_without_a_password_keeps_the_old_one():
    admin = UserFactory(role="ADMIN")
    client = UserFactory(role="CLIENT")
    services.user_update(actor=admin, user=client, first_name="Bo", password="")
    stored = User.objects.get(pk=client.pk)
    assert stored.first_name == "Bo"
    assert stored.check_password(PASSWORD)


def test_weak_password_on_update_is_refused_and_changes_nothing():
    admin = UserFactory(role="ADMIN")
    client = UserFactory(role="CLIENT")
    with pytest.raises(ValidationError):
        services.user_update(actor=admin, user=client, password="123")
    assert User.objects.get(pk=client.pk).check_password(PASSWORD)


def test_owner_changes_a_role():
    owner = UserFactory(role="OWNER")
    client = UserFactory(role="CLIENT")
    services.user_update(actor=owner, user=client, role="ADMIN")
    assert User.objects.get(pk=client.pk).role == "ADMIN"


@pytest.mark.parametrize(
    ("target_role", "fields"),
    [
        ("ADMIN", {"email": "x@example.test"}),  # an admin may not touch another admin
        ("OWNER", {"email": "x@example.test"}),
        ("CLIENT", {"role": "ADMIN"}),  # nor promote anyone to a global role
        ("CLIENT", {"role": "OWNER"}),
    ],
)
def test_admin_updates_beyond_its_rights_are_refused(target_role, fields):
    admin = UserFactory(role="ADMIN")
    target = UserFactory(role=target_role, email="before@example.test")
    with pytest.raises(DomainError) as refused:
        services.user_update(actor=admin, user=target, **fields)
    assert (refused.value.code, refused.value.status) == ("role_forbidden", 403)
    stored = User.objects.get(pk=target.pk)
    assert (stored.role, stored.email) == (target_role, "before@example.test")


def test_nobody_changes_their_own_role():
    owner = UserFactory(role="OWNER")
    with pytest.raises(DomainError) as refused:
        services.user_update(actor=owner, user=owner, role="ADMIN")
    assert (refused.value.code, refused.value.status) == ("role_self_change", 400)
    assert refused.value.message == "You cannot change your own role."
    assert User.objects.get(pk=owner.pk).role == "OWNER"


def test_restating_ones_own_role_is_not_a_change():
    owner = UserFactory(role="OWNER")
    services.user_update(actor=owner, user=owner, role="OWNER", first_name="Same")
    stored = User.objects.get(pk=owner.pk)
    assert (stored.role, stored.first_name) == ("OWNER", "Same")


# user_deactivate --------------------------------------------------------------------------------


def test_deactivate_disables_the_account_and_revokes_every_live_token():
    owner = UserFactory(role="OWNER")
    target = UserFactory(role="ADMIN")
    live = tokens_of(target)
    earlier = timezone.now() - timedelta(days=3)
    old = services.api_token_create(user=target, name="old")[0]
    ApiToken.objects.filter(pk=old.pk).update(revoked_at=earlier)
    bystander = tokens_of(owner, n=1)[0]

    services.user_deactivate(actor=owner, user=target)

    assert User.objects.get(pk=target.pk).is_active is False
    for token in live:
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=old.pk).revoked_at == earlier  # the first revocation stands
    assert ApiToken.objects.get(pk=bystander.pk).revoked_at is None
    assert User.objects.get(pk=owner.pk).is_active is True


def test_nobody_disables_themselves():
    owner = UserFactory(role="OWNER")
    token = tokens_of(owner, n=1)[0]
    with pytest.raises(DomainError) as refused:
        services.user_deactivate(actor=owner, user=owner)
    assert (refused.value.code, refused.value.status) == ("user_self_delete", 400)
    assert refused.value.message == "You cannot disable your own account."
    assert User.objects.get(pk=owner.pk).is_active is True
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


@pytest.mark.parametrize(("actor_role", "target_role"), [("ADMIN", "OWNER"), ("ADMIN", "ADMIN"), ("CLIENT", "GUEST")])
def test_disabling_beyond_ones_rights_is_refused(actor_role, target_role):
    actor = UserFactory(role=actor_role)
    target = UserFactory(role=target_role)
    token = tokens_of(target, n=1)[0]
    with pytest.raises(DomainError) as refused:
        services.user_deactivate(actor=actor, user=target)
    assert (refused.value.code, refused.value.status) == ("role_forbidden", 403)
    assert User.objects.get(pk=target.pk).is_active is True
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


# tokens -----------------------------------------------------------------------------------------


def test_token_create_stores_only_a_hash_and_returns_the_secret_once():
    user = UserFactory(role="CLIENT")
    expires = timezone.now() + timedelta(days=30)
    token, full = services.api_token_create(user=user, name="grafana", expires_at=expires)
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.user_id, stored.name, stored.expires_at, stored.revoked_at) == (user.pk, "grafana", expires, None)
    prefix, secret = full.removeprefix("hi_").split("_", 1)
    assert prefix == stored.prefix
    assert stored.secret_hash == hash_secret(secret) != secret
    assert stored.is_active


@pytest.mark.parametrize(
    ("actor_role", "owner_role", "allowed"),
    [
        ("CLIENT", "CLIENT", False),  # another client's token
        ("ADMIN", "CLIENT", True),
        ("ADMIN", "ADMIN", False),  # an admin does not manage other admins, nor their tokens
        ("ADMIN", "OWNER", False),
        ("OWNER", "ADMIN", True),
    ],
)
def test_revoking_someone_elses_token_needs_the_right_to_manage_them(actor_role, owner_role, allowed):
    actor, holder = UserFactory(role=actor_role), UserFactory(role=owner_role)
    token = tokens_of(holder, n=1)[0]
    if allowed:
        services.api_token_revoke(token=token, actor=actor)
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
        return
    with pytest.raises(DomainError) as refused:
        services.api_token_revoke(token=token, actor=actor)
    assert (refused.value.code, refused.value.status, refused.value.message) == ("not_found", 404, "Not found.")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_everyone_revokes_their_own_token():
    client = UserFactory(role="CLIENT")
    token = tokens_of(client, n=1)[0]
    services.api_token_revoke(token=token, actor=client)
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_an_expiry_that_is_not_in_the_future_is_refused(monkeypatch):
    user = UserFactory(role="CLIENT")
    now = timezone.now()
    monkeypatch.setattr(services.timezone, "now", lambda: now)
    for expires in (now, now - timedelta(seconds=1)):
        with pytest.raises(DomainError) as refused:
            services.api_token_create(user=user, name="late", expires_at=expires)
        assert (refused.value.code, refused.value.message) == ("token_expiry_past", "The expiry must be in the future.")
    assert not ApiToken.objects.filter(user=user).exists()


def test_revoke_is_recorded_once():
    user = UserFactory(role="CLIENT")
    token = tokens_of(user, n=1)[0]
    services.api_token_revoke(token=token)
    first = ApiToken.objects.get(pk=token.pk).revoked_at
    assert first is not None
    services.api_token_revoke(token=ApiToken.objects.get(pk=token.pk))
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first
