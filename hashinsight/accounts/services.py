"""Writes for users and API tokens. Each service runs in one transaction and checks the actor."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from hashinsight.accounts.models import ApiToken, User, hash_secret
from hashinsight.accounts.roles import can_manage_role
from hashinsight.core.errors import DomainError
from hashinsight.core.realtime import notify_access_changed
from hashinsight.events.audit import actor_of, audit_append
from hashinsight.events.outbox import publish


def _check_role_change(*, actor: User, role: str) -> None:
    if not can_manage_role(actor, role):
        raise DomainError("role_forbidden", f"You may not manage users with the role {role}.", status=403)


@transaction.atomic
def user_create(*, actor: User, username: str, password: str, role: str, email: str = "", **fields) -> User:
    _check_role_change(actor=actor, role=role)
    user = User(username=username, email=email, role=role, **fields)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    _audit("user.created", actor=actor, user=user, payload={"user_id": user.pk, "role": user.role})
    return user


def _audit(event_type: str, *, actor, user, payload: dict) -> None:
    actor_type, actor_id = actor_of(actor)
    audit_append(
        event_type=event_type, actor_type=actor_type, actor_id=actor_id, reference=f"user:{user.pk}", payload=payload
    )


@transaction.atomic
def user_update(*, actor: User, user: User, **fields) -> User:
    # Lock the row and judge against the role stored now, not the caller's copy: two admins changing
    # one user's role at once are applied one after the other, each checked against the other's result.
    old_role = User.objects.select_for_update().values_list("role", flat=True).get(pk=user.pk)
    _check_role_change(actor=actor, role=old_role)
    if "role" in fields:
        _check_role_change(actor=actor, role=fields["role"])
        if user.pk == actor.pk and fields["role"] != old_role:
            raise DomainError("role_self_change", "You cannot change your own role.", status=400)
    password = fields.pop("password", None)
    for name, value in fields.items():
        setattr(user, name, value)
    if password:
        validate_password(password, user)
        user.set_password(password)
    user.save()
    if user.role != old_role:
        _audit("user.role_changed", actor=actor, user=user,
               payload={"user_id": user.pk, "old_role": old_role, "new_role": user.role})  # fmt: skip
        publish(
            "user.role_changed", aggregate=f"user:{user.pk}",
            payload={"user_id": user.pk, "old_role": old_role, "new_role": user.role, "actor_id": actor.pk},
        )  # fmt: skip
    notify_access_changed(user.pk)  # a new role or password changes what open WebSockets may see
    return user


@transaction.atomic
def user_deactivate(*, actor: User, user: User) -> User:
    _check_role_change(actor=actor, role=user.role)
    if user.pk == actor.pk:
        raise DomainError("user_self_delete", "You cannot disable your own account.", status=400)
    user.is_active = False
    user.save(update_fields=["is_active"])
    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _audit("user.deactivated", actor=actor, user=user, payload={"user_id": user.pk, "role": user.role})
    notify_access_changed(user.pk)  # open WebSockets close within seconds
    return user


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_at=None, scope: str = ApiToken.Scope.READ_WRITE
) -> tuple[ApiToken, str]:
    """Create a token and return it with the full secret, which is never retrievable again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("token_expiry_past", "The expiry must be in the future.")
    prefix, secret, full = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=hash_secret(secret), expires_at=expires_at, scope=scope
    )
    _audit_token("api_token.created", token=token, actor=user)
    return token, full


def _audit_token(event_type: str, *, token: ApiToken, actor) -> None:
    actor_type, actor_id = actor_of(actor)
    audit_append(
        event_type=event_type, actor_type=actor_type, actor_id=actor_id, reference=f"api_token:{token.pk}",
        payload={"token_id": token.pk, "user_id": token.user_id, "name": token.name, "prefix": token.prefix,
                 "scope": token.scope, "expires_at": token.expires_at},
    )  # fmt: skip


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User | None = None) -> ApiToken:
    """Revoke ``token`` (a repeat is a no-op). With an ``actor``, it must own the token or be allowed to
    manage its owner's role; callers look the token up through a selector first, so this is a second line."""
    if actor is not None and token.user_id != actor.pk and not can_manage_role(actor, token.user.role):
        raise DomainError("not_found", "Not found.", status=404)
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _audit_token("api_token.revoked", token=token, actor=actor)
        notify_access_changed(token.user_id)  # its open WebSockets close within seconds
    return token
