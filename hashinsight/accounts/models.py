"""Users, their role, and hashed API tokens for integrations."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import GLOBAL_ROLES, STAFF_ROLES, Role


class UserManager(DjangoUserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # `createsuperuser` makes an OWNER: staff and superuser flags follow the role (see save()).
        extra_fields.setdefault("role", Role.OWNER)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in. Their ``role`` picks a row of the access matrix; object scope comes from
    guardian grants on sites (site owners) and customers (hosting clients)."""

    role = models.CharField(_("role"), max_length=24, choices=Role.choices, default=Role.GUEST, db_index=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="en")

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def save(self, *args, **kwargs):
        # Staff and superuser flags follow the role so there is one source of truth for access.
        self.is_staff = self.role in STAFF_ROLES
        self.is_superuser = self.role == Role.OWNER
        if "update_fields" in kwargs and kwargs["update_fields"] is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "is_staff", "is_superuser"}
        super().save(*args, **kwargs)

    @property
    def sees_everything(self) -> bool:
        return self.is_active and self.role in GLOBAL_ROLES


TOKEN_PREFIX = "hi"  # noqa: S105 - a public marker, not a secret


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A credential for integrations. Only a SHA-256 hash of the secret is stored; the full token
    (``hi_<prefix>_<secret>``) is shown once, when it is created. A read-only token may only make safe
    requests (GET, HEAD, OPTIONS), whatever its user's role allows."""

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        READ_WRITE = "read_write", _("Read and write")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    # Tokens made before scopes existed could write, so that stays the default.
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({TOKEN_PREFIX}_{self.prefix}_…)"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (prefix, secret, full token)."""
        prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        return prefix, secret, f"{TOKEN_PREFIX}_{prefix}_{secret}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_active else "expired"


# The API schema's name for a token's scope (settings.SPECTACULAR_SETTINGS ENUM_NAME_OVERRIDES).
TOKEN_SCOPES = ApiToken.Scope
