"""Response profiles and demand-response programmes on the Django side (issue 9, part 4c).

A response profile is how a site answers a curtailment request, saved so an operator (or a programme's webhook)
starts an event with one choice. A demand-response programme lets a utility start and end events on one site by a
signed webhook (``POST /api/v1/curtailment/dr/<slug>``, received by ``intelligence.curtailment_events``); its HMAC
secret is generated here, sealed with the project's envelope encryption (as ``telemetry.devices`` seals an edge
device's) and shown once, at creation and at each rotation.

Selectors (reads, scoped): ``profile_list``, ``profile_get``, ``program_list``, ``program_get``.
Services (writes, audited): ``profile_create``, ``profile_update``, ``profile_set_default``, ``profile_delete``,
``program_create``, ``program_rotate``, ``program_set_active``, ``program_delete``.
``program_secret`` opens a programme's key for the webhook receiver; ``clean_scope`` checks a scope against a site
(shared with the events part).

Who may do what: both belong to the CURTAILMENT module and to a site. READ and a visible site to read; FULL and a
manage grant on the site to change. A site (or a profile or programme on it) the user does not see is a 404, one
seen through a read-only grant a 403 ``site_read_only`` on writes (``sites.selectors``, the plans' rules).

Bad input is a ``DomainError`` (400) whose ``details.field`` names the field; nothing is changed."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import actor_of, audit_append
from hashinsight.security.crypto import open_json, seal_json
from intelligence.models import (
    CurtailmentMode,
    CurtailmentPriority,
    DemandResponseProgram,
    DriftAction,
    ResponseProfile,
    ScopeKind,
)

MODULE = Module.CURTAILMENT
MAX_DURATION_MINUTES = 7 * 24 * 60  # the control plane takes curtailments within 7 days
MAX_BATCH = 100_000
MAX_INTERVAL_SECONDS = 3600
MAX_KW = Decimal("1000000")  # 1 GW: beyond any site; a typo guard
MAX_SCOPE_IDS = 10_000
MAX_ID = 2**63 - 1  # a bigger id matches no row, and the database driver would refuse it (a 500, not a 404)
WEBHOOK_PATH = "/api/v1/curtailment/dr/{slug}"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
PROFILE_FIELDS = (
    "name", "mode", "target_kw", "priority", "scope", "min_duration_minutes", "max_duration_minutes",
    "restore_batch_size", "restore_interval_seconds", "drift_action", "is_default",
)  # fmt: skip


def _bad(code: str, field: str, message: str, **details) -> DomainError:
    return DomainError(code, f"{field}: {message}", status=400, details={"field": field, **details})


def _not_found() -> DomainError:
    return DomainError("not_found", "Not found.", status=404)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------------
# Selectors


def profile_list(*, user) -> QuerySet[ResponseProfile]:
    """The profiles of the sites ``user`` sees (none without READ on CURTAILMENT)."""
    from sites.selectors import site_list

    if not has_access(user, MODULE, Access.READ):
        return ResponseProfile.objects.none()
    return ResponseProfile.objects.filter(site__in=site_list(user=user)).select_related("site")


def _id(value) -> int | None:
    """A row id from an int or a string of digits, None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= MAX_ID else None


def profile_get(*, user, profile_id) -> ResponseProfile:
    pk = _id(profile_id)
    profile = profile_list(user=user).filter(pk=pk).first() if pk is not None else None
    if profile is None:
        raise _not_found()
    return profile


def program_list(*, user) -> QuerySet[DemandResponseProgram]:
    from sites.selectors import site_list

    if not has_access(user, MODULE, Access.READ):
        return DemandResponseProgram.objects.none()
    return DemandResponseProgram.objects.filter(site__in=site_list(user=user)).select_related("site", "profile")


def program_get(*, user, program_id) -> DemandResponseProgram:
    pk = _id(program_id)
    program = program_list(user=user).filter(pk=pk).first() if pk is not None else None
    if program is None:
        raise _not_found()
    return program


def _site_for(*, user, site_id, write: bool):
    """The site, if ``user`` sees it (else 404); with ``write``, FULL on CURTAILMENT and a manage grant (else 403)."""
    from sites.selectors import site_list

    if _id(site_id) is None:
        if isinstance(site_id, bool) or not isinstance(site_id, int | str) or not str(site_id).isdigit():
            raise _bad("invalid", "site", "is a site id (a number)")
        raise _not_found()  # a number no row can have
    site_id = _id(site_id)
    site = site_list(user=user).filter(pk=site_id).first() if has_access(user, MODULE, Access.READ) else None
    if site is None:
        raise _not_found()
    if write:
        require_write(user=user, site_id=site.pk)
    return site


def require_write(*, user, site_id: int) -> None:
    from sites.selectors import require_site_manageable

    if not has_access(user, MODULE, Access.FULL):
        raise DomainError("permission_denied", "Your role may not change curtailment settings.", status=403)
    require_site_manageable(user=user, site_id=site_id)


def may_write(*, user, site_id: int) -> bool:
    from sites.selectors import site_is_manageable

    return has_access(user, MODULE, Access.FULL) and site_is_manageable(user=user, site_id=site_id)


# ---------------------------------------------------------------------------------------------------------
# Checking input


def _int(value, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _bad("invalid", field, "is a whole number")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise _bad("invalid", field, "is a whole number")
    if value < low or value > high:
        raise _bad("out_of_range", field, f"is between {low} and {high}", low=low, high=high)
    return value


def _choice(value, field: str, choices) -> str:
    allowed = [c for c, _label in choices]
    if value not in allowed:
        raise _bad("invalid_choice", field, f"is one of {', '.join(allowed)}", choices=allowed)
    return value


def _text(value, field: str, *, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad("required", field, "is required (text)")
    value = " ".join(value.split())
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise _bad("invalid", field, "holds a NUL character")
    if len(value) > max_chars:
        raise _bad("too_long", field, f"is at most {max_chars} characters", max_chars=max_chars)
    return value


def _kw(value) -> Decimal:
    if isinstance(value, bool) or value in (None, ""):
        raise _bad("required", "target_kw", "is required for a fixed kW reduction (kW > 0)")
    try:
        kw = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _bad("invalid", "target_kw", "is a number of kW") from None
    if not kw.is_finite() or kw <= 0:
        raise _bad("not_positive", "target_kw", "is more than 0 kW")
    if kw > MAX_KW:
        raise _bad("out_of_range", "target_kw", f"is at most {MAX_KW} kW")
    return kw.quantize(Decimal("0.001"))


def clean_scope(site, scope) -> dict:
    """``scope`` checked against ``site``: ``{}`` (or kind ``site``) is the whole site; otherwise
    ``{"kind": zone|rack|customer|miners, "ids": [...]}`` with zone ids of the site, rack names on it, ids of hosting
    clients with miners on it, or serials of its miners. Returns the normalised scope (ids unique and sorted; the
    whole site as ``{}``). Anything else → 400 ``invalid_scope`` naming what is wrong (unknown ids listed)."""
    from miners.models import Miner
    from sites.models import Zone

    if scope in (None, "", {}):
        return {}
    if not isinstance(scope, Mapping):
        raise _bad("invalid_scope", "scope", 'is an object {"kind": …, "ids": […]}')
    extra = set(scope) - {"kind", "ids"}
    if extra:
        raise _bad("invalid_scope", "scope", f"unknown keys {', '.join(sorted(map(str, extra)))}")
    kind = scope.get("kind")
    if kind not in ScopeKind.values:
        raise _bad("invalid_scope", "scope", f"kind is one of {', '.join(ScopeKind.values)}")
    if kind == ScopeKind.SITE:
        if scope.get("ids"):
            raise _bad("invalid_scope", "scope", "a whole-site scope takes no ids")
        return {}
    ids = scope.get("ids")
    if not isinstance(ids, list) or not ids:
        raise _bad("invalid_scope", "scope", f"a {kind} scope needs a non-empty list of ids")
    if len(ids) > MAX_SCOPE_IDS:
        raise _bad("invalid_scope", "scope", f"at most {MAX_SCOPE_IDS} ids")
    if kind in (ScopeKind.ZONE, ScopeKind.CUSTOMER):
        if any(isinstance(i, bool) or not isinstance(i, int) or not 0 < i <= MAX_ID for i in ids):
            raise _bad("invalid_scope", "scope", f"{kind} ids are numbers (row ids)")
        wanted = set(ids)
        if kind == ScopeKind.ZONE:
            known = set(Zone.objects.filter(site=site, pk__in=wanted).values_list("pk", flat=True))
        else:
            known = set(
                Miner.objects.filter(site=site, customer_id__in=wanted).values_list("customer_id", flat=True).distinct()
            )
    else:
        if any(not isinstance(i, str) or not i.strip() or "\x00" in i or len(i) > 64 for i in ids):
            raise _bad("invalid_scope", "scope", f"{kind} ids are texts of 1–64 characters")
        wanted = {i.strip() for i in ids}
        field = "rack" if kind == ScopeKind.RACK else "serial"
        known = set(
            Miner.objects.filter(site=site, **{f"{field}__in": wanted}).values_list(field, flat=True).distinct()
        )
    unknown = sorted(wanted - known, key=str)
    if unknown:
        raise DomainError(
            "invalid_scope", f"scope: not on this site: {', '.join(map(str, unknown[:10]))}", status=400,
            details={"field": "scope", "unknown": unknown[:100]},
        )  # fmt: skip
    return {
        "kind": kind,
        "ids": sorted(wanted, key=str) if kind in (ScopeKind.RACK, ScopeKind.MINERS) else sorted(wanted),
    }


def _profile_values(site, data: Mapping, *, current: ResponseProfile | None) -> dict:
    """The profile's fields from ``data`` over ``current`` (an update changes only what it names)."""
    if not isinstance(data, Mapping):
        raise _bad("invalid", "body", "is a JSON object")
    unknown = set(data) - set(PROFILE_FIELDS) - {"site"}
    if unknown:
        raise _bad("unknown", ", ".join(sorted(map(str, unknown))), "unknown field")
    base = {f: getattr(current, f) for f in PROFILE_FIELDS} if current else {}
    given = {k: v for k, v in data.items() if k != "site"}
    v = {**base, **given}
    out = {"name": _text(v.get("name"), "name", max_chars=80)}
    out["mode"] = _choice(v.get("mode", CurtailmentMode.FULL_STOP), "mode", CurtailmentMode.choices)
    out["target_kw"] = _kw(v.get("target_kw")) if out["mode"] == CurtailmentMode.KW_REDUCTION else None
    out["priority"] = _choice(v.get("priority", CurtailmentPriority.NORMAL), "priority", CurtailmentPriority.choices)
    out["drift_action"] = _choice(v.get("drift_action", DriftAction.RECURTAIL), "drift_action", DriftAction.choices)
    out["scope"] = clean_scope(site, v.get("scope"))
    out["min_duration_minutes"] = _int(v.get("min_duration_minutes", 15), "min_duration_minutes", low=0,
                                       high=MAX_DURATION_MINUTES)  # fmt: skip
    out["max_duration_minutes"] = _int(v.get("max_duration_minutes", 240), "max_duration_minutes", low=1,
                                       high=MAX_DURATION_MINUTES)  # fmt: skip
    if out["min_duration_minutes"] > out["max_duration_minutes"]:
        raise _bad(
            "min_above_max", "min_duration_minutes", "the minimum duration is at most the maximum",
            min=out["min_duration_minutes"], max=out["max_duration_minutes"],
        )  # fmt: skip
    out["restore_batch_size"] = _int(v.get("restore_batch_size", 50), "restore_batch_size", low=1, high=MAX_BATCH)
    out["restore_interval_seconds"] = _int(v.get("restore_interval_seconds", 60), "restore_interval_seconds", low=0,
                                           high=MAX_INTERVAL_SECONDS)  # fmt: skip
    default = v.get("is_default", False)
    if not isinstance(default, bool):
        raise _bad("invalid", "is_default", "is true or false")
    out["is_default"] = default
    clash = ResponseProfile.objects.filter(site=site, name=out["name"])
    if current is not None:
        clash = clash.exclude(pk=current.pk)
    if clash.exists():
        raise _bad("name_taken", "name", "another profile of this site has this name")
    return out


# ---------------------------------------------------------------------------------------------------------
# Profiles: services


def profile_body(profile: ResponseProfile) -> dict:
    """Plain JSON: kW as a decimal string, times in UTC ISO 8601."""
    return {
        "id": profile.pk,
        "site": profile.site_id,
        "name": profile.name,
        "mode": profile.mode,
        "target_kw": None if profile.target_kw is None else str(profile.target_kw),
        "priority": profile.priority,
        "scope": profile.scope,
        "min_duration_minutes": profile.min_duration_minutes,
        "max_duration_minutes": profile.max_duration_minutes,
        "restore_batch_size": profile.restore_batch_size,
        "restore_interval_seconds": profile.restore_interval_seconds,
        "drift_action": profile.drift_action,
        "is_default": profile.is_default,
        "created_by": profile.created_by_id,
        "created_at": _iso(profile.created_at),
        "updated_at": _iso(profile.updated_at),
    }


def _audit_profile(profile: ResponseProfile, action: str, actor, **extra) -> None:
    actor_type, actor_id = actor_of(actor)
    audit_append(
        event_type=f"response_profile.{action}", actor_type=actor_type, actor_id=actor_id,
        reference=f"response_profile:{profile.pk}", site=profile.site_id,
        payload={"profile_id": profile.pk, "name": profile.name, **extra},
    )  # fmt: skip


def _snapshot(profile: ResponseProfile) -> dict:
    body = profile_body(profile)
    return {k: body[k] for k in PROFILE_FIELDS}


def _clear_default(site_id: int, keep: int | None) -> None:
    """The site's one default: the others lose it (locked first, so two concurrent "make default" serialise)."""
    others = ResponseProfile.objects.select_for_update().filter(site_id=site_id, is_default=True)
    if keep is not None:
        others = others.exclude(pk=keep)
    list(others)
    others.update(is_default=False)


def _saved(profile: ResponseProfile) -> None:
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError:  # a concurrent request took the name between the check and the write
        raise _bad("name_taken", "name", "another profile of this site has this name") from None


def profile_create(*, actor, data: Mapping) -> ResponseProfile:
    """A new profile on ``data["site"]`` (a site ``actor`` manages); ``is_default`` makes it the site's default."""
    if not isinstance(data, Mapping):
        raise _bad("invalid", "body", "is a JSON object")
    site = _site_for(user=actor, site_id=data.get("site"), write=True)
    with transaction.atomic():
        values = _profile_values(site, data, current=None)
        if values["is_default"]:
            _clear_default(site.pk, keep=None)
        profile = ResponseProfile(site=site, created_by=actor if getattr(actor, "pk", None) else None, **values)
        _saved(profile)
        _audit_profile(profile, "created", actor, values=_snapshot(profile))
    return profile


def profile_update(*, actor, profile: ResponseProfile, data: Mapping) -> ResponseProfile:
    """Change the fields ``data`` names (a profile stays on its site: ``site`` may be given only unchanged)."""
    require_write(user=actor, site_id=profile.site_id)
    if isinstance(data, Mapping) and "site" in data and str(data["site"]) != str(profile.site_id):
        raise _bad("immutable", "site", "a profile stays on its site")
    with transaction.atomic():
        profile = ResponseProfile.objects.select_for_update().get(pk=profile.pk)
        before = _snapshot(profile)
        values = _profile_values(profile.site, data, current=profile)
        if values["is_default"] and not profile.is_default:
            _clear_default(profile.site_id, keep=profile.pk)
        for field, value in values.items():
            setattr(profile, field, value)
        _saved(profile)
        after = _snapshot(profile)
        changed = {k: after[k] for k in after if after[k] != before[k]}
        if changed:
            _audit_profile(profile, "updated", actor, changed=changed)
    return profile


def profile_set_default(*, actor, profile: ResponseProfile) -> ResponseProfile:
    """Make ``profile`` its site's default (the one an operator's form starts with); the previous one loses it."""
    require_write(user=actor, site_id=profile.site_id)
    with transaction.atomic():
        _clear_default(profile.site_id, keep=profile.pk)
        profile = ResponseProfile.objects.select_for_update().get(pk=profile.pk)
        if not profile.is_default:
            profile.is_default = True
            profile.save(update_fields=["is_default", "updated_at"])
            _audit_profile(profile, "made_default", actor)
    return profile


def profile_delete(*, actor, profile: ResponseProfile) -> None:
    """Delete a profile no programme uses (409 ``profile_in_use`` names them); past events keep their own copy of
    its settings and lose only the link."""
    require_write(user=actor, site_id=profile.site_id)
    with transaction.atomic():
        profile = ResponseProfile.objects.select_for_update().get(pk=profile.pk)
        users = list(profile.dr_programs.values_list("name", flat=True))
        if users:
            raise DomainError(
                "profile_in_use", f"Demand-response programmes use this profile: {', '.join(users)}.", status=409,
                details={"programs": users},
            )  # fmt: skip
        _audit_profile(profile, "deleted", actor, values=_snapshot(profile))
        profile.delete()


def default_profile(site) -> ResponseProfile | None:
    return ResponseProfile.objects.filter(site=site, is_default=True).first()


# ---------------------------------------------------------------------------------------------------------
# Demand-response programmes


def _aad(slug: str) -> bytes:
    # Bound to the slug (immutable): a sealed value copied onto another programme's row does not open.
    return f"dr_program:{slug}".encode()


def _new_secret(program: DemandResponseProgram) -> str:
    """A fresh secret for ``program`` (not saved): 256 bits as 43 URL-safe characters, stored only sealed."""
    secret = secrets.token_urlsafe(32)
    program.secret_sealed = seal_json({"secret": secret}, aad=_aad(program.slug))
    return secret


def program_secret(program: DemandResponseProgram) -> bytes:
    """The programme's HMAC-SHA256 key: the secret as shown to the operator, as ASCII bytes (a utility signs with
    the very text it was given)."""
    return open_json(program.secret_sealed, aad=_aad(program.slug))["secret"].encode("ascii")


def webhook_path(program: DemandResponseProgram) -> str:
    return WEBHOOK_PATH.format(slug=program.slug)


def program_body(program: DemandResponseProgram, *, request=None) -> dict:
    """Plain JSON, never the secret."""
    path = webhook_path(program)
    return {
        "id": program.pk,
        "site": program.site_id,
        "name": program.name,
        "slug": program.slug,
        "profile": program.profile_id,
        "profile_name": program.profile.name,
        "is_active": program.is_active,
        "webhook_url": request.build_absolute_uri(path) if request is not None else path,
        "last_received_at": _iso(program.last_received_at),
        "created_by": program.created_by_id,
        "created_at": _iso(program.created_at),
    }


def _audit_program(program: DemandResponseProgram, action: str, actor, **extra) -> None:
    actor_type, actor_id = actor_of(actor)
    audit_append(
        event_type=f"dr_program.{action}", actor_type=actor_type, actor_id=actor_id,
        reference=f"dr_program:{program.pk}", site=program.site_id,
        payload={"program_id": program.pk, "name": program.name, "slug": program.slug, **extra},
    )  # fmt: skip


def _profile_of_site(site, profile_id) -> ResponseProfile:
    if profile_id in (None, ""):
        raise _bad("required", "profile", "is the id of one of the site's response profiles")
    pk = _id(profile_id)
    profile = ResponseProfile.objects.filter(site=site, pk=pk).first() if pk is not None else None
    if profile is None:
        raise _bad("invalid", "profile", "is not a response profile of this site")
    return profile


def program_create(*, actor, data: Mapping) -> tuple[DemandResponseProgram, str]:
    """A programme on ``data["site"]`` with ``name``, ``profile`` (one of the site's) and an optional ``slug``
    (default: from the name; unique, fixed for good). Returns (programme, secret): the secret is never shown again."""
    if not isinstance(data, Mapping):
        raise _bad("invalid", "body", "is a JSON object")
    unknown = set(data) - {"site", "name", "slug", "profile", "is_active"}
    if unknown:
        raise _bad("unknown", ", ".join(sorted(map(str, unknown))), "unknown field")
    site = _site_for(user=actor, site_id=data.get("site"), write=True)
    name = _text(data.get("name"), "name", max_chars=80)
    slug = data.get("slug") or slugify(name)[:60].strip("-")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise _bad("invalid", "slug", "is 1–60 lowercase letters, digits and hyphens")
    profile = _profile_of_site(site, data.get("profile"))
    active = data.get("is_active", True)
    if not isinstance(active, bool):
        raise _bad("invalid", "is_active", "is true or false")
    if DemandResponseProgram.objects.filter(slug=slug).exists():
        raise _bad("slug_taken", "slug", "another programme has this slug")
    program = DemandResponseProgram(
        site=site, name=name, slug=slug, profile=profile, is_active=active,
        created_by=actor if getattr(actor, "pk", None) else None,
    )  # fmt: skip
    secret = _new_secret(program)
    try:
        with transaction.atomic():
            program.save()
            _audit_program(program, "created", actor, profile_id=profile.pk, is_active=active)
    except IntegrityError:
        raise _bad("slug_taken", "slug", "another programme has this slug") from None
    return program, secret


def program_update(*, actor, program: DemandResponseProgram, data: Mapping) -> DemandResponseProgram:
    """Change ``name``, ``profile`` or ``is_active`` (the slug and the site stay: the webhook URL and the sealed
    secret are bound to them)."""
    require_write(user=actor, site_id=program.site_id)
    if not isinstance(data, Mapping):
        raise _bad("invalid", "body", "is a JSON object")
    for fixed in ("slug", "site"):
        if fixed in data and str(data[fixed]) != str(getattr(program, "slug" if fixed == "slug" else "site_id")):
            raise _bad("immutable", fixed, "cannot change (the webhook URL and the secret are bound to it)")
    unknown = set(data) - {"site", "name", "slug", "profile", "is_active"}
    if unknown:
        raise _bad("unknown", ", ".join(sorted(map(str, unknown))), "unknown field")
    with transaction.atomic():
        program = DemandResponseProgram.objects.select_for_update().select_related("profile").get(pk=program.pk)
        changed = {}
        if "name" in data:
            name = _text(data["name"], "name", max_chars=80)
            if name != program.name:
                program.name = changed["name"] = name
        if "profile" in data:
            profile = _profile_of_site(program.site, data["profile"])
            if profile.pk != program.profile_id:
                program.profile, changed["profile_id"] = profile, profile.pk
        if "is_active" in data:
            if not isinstance(data["is_active"], bool):
                raise _bad("invalid", "is_active", "is true or false")
            if data["is_active"] != program.is_active:
                program.is_active = changed["is_active"] = data["is_active"]
        if changed:
            program.save()
            _audit_program(program, "updated", actor, changed=changed)
    return program


def program_set_active(*, actor, program: DemandResponseProgram, active: bool) -> DemandResponseProgram:
    """Activate or deactivate: an inactive programme's webhook is refused (events it started run on)."""
    return program_update(actor=actor, program=program, data={"is_active": bool(active)})


def program_rotate(*, actor, program: DemandResponseProgram) -> tuple[DemandResponseProgram, str]:
    """A new secret; the old one stops working at once. Returns (programme, secret), the secret shown once."""
    require_write(user=actor, site_id=program.site_id)
    with transaction.atomic():
        program = DemandResponseProgram.objects.select_for_update().select_related("profile").get(pk=program.pk)
        secret = _new_secret(program)
        program.save(update_fields=["secret_sealed"])
        _audit_program(program, "rotated", actor)
    return program, secret


def program_delete(*, actor, program: DemandResponseProgram) -> None:
    """Delete a programme: its webhook answers 404 from then on; the events it started keep their records."""
    require_write(user=actor, site_id=program.site_id)
    with transaction.atomic():
        _audit_program(program, "deleted", actor)
        program.delete()
