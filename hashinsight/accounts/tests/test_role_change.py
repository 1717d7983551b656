"""A role change locks the user's row, is judged against the role stored (not the caller's copy) and
leaves a ``user.role_changed`` event in the same transaction, where the audit chain will record it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hashinsight.accounts import services
from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_role_change_publishes_who_changed_what():
    owner = UserFactory(role="OWNER")
    user = UserFactory(role="CLIENT")
    services.user_update(actor=owner, user=user, role="MINING_SITE_OWNER")
    assert user.__class__.objects.get(pk=user.pk).role == "MINING_SITE_OWNER"
    event = OutboxEvent.objects.get(event_type="user.role_changed")
    assert event.aggregate == f"user:{user.pk}"
    assert event.payload == {"user_id": user.pk, "old_role": "CLIENT", "new_role": "MINING_SITE_OWNER",
                             "actor_id": owner.pk}  # fmt: skip


def test_other_edits_publish_no_role_event():
    owner = UserFactory(role="OWNER")
    user = UserFactory(role="CLIENT")
    services.user_update(actor=owner, user=user, first_name="Bo", role="CLIENT")
    assert not OutboxEvent.objects.filter(event_type="user.role_changed").exists()


def test_the_check_uses_the_stored_role_not_a_stale_copy():
    """An admin holding a stale copy (CLIENT) of a user an owner has just made ADMIN may not edit them."""
    owner, admin = UserFactory(role="OWNER"), UserFactory(role="ADMIN")
    target = UserFactory(role="CLIENT")
    stale = target.__class__.objects.get(pk=target.pk)
    services.user_update(actor=owner, user=target, role="ADMIN")
    with pytest.raises(DomainError):
        services.user_update(actor=admin, user=stale, role="GUEST")
    assert target.__class__.objects.get(pk=target.pk).role == "ADMIN"


def test_the_row_is_locked(on_postgres):
    owner = UserFactory(role="OWNER")
    user = UserFactory(role="CLIENT")
    with CaptureQueriesContext(connection) as queries:
        services.user_update(actor=owner, user=user, role="GUEST")
    assert any("FOR UPDATE" in q["sql"] and "accounts_user" in q["sql"] for q in queries.captured_queries)
