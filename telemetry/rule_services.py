"""A site's alert rules: reading them (the five defaults are written on a site's first read) and
changing them (validated per kind, one transaction, ``alert_rules.changed`` published).

Refused changes write nothing: every value is checked before the first row is saved."""

from __future__ import annotations

from django.db import transaction

from hashinsight.core.errors import DomainError
from hashinsight.events import outbox
from telemetry import rules as R
from telemetry.models import AlertRule

FIELDS = ("enabled", "threshold", "duration_minutes", "severity")


def _default_rows(site, kinds) -> list[AlertRule]:
    return [
        AlertRule(site=site, kind=d.kind, threshold=d.threshold, duration_minutes=d.duration_minutes,
                  severity=d.severity, enabled=d.enabled)
        for d in R.default_rules()
        if d.kind in kinds
    ]  # fmt: skip


def site_rules(*, site) -> list[AlertRule]:
    """The site's five rules in kind order. A site whose rules were never read gets the defaults
    written now (idempotent: a concurrent first read inserts nothing twice). Two queries at most
    once the rows exist, one."""
    rows = {r.kind: r for r in AlertRule.objects.filter(site=site).select_related("updated_by")}
    missing = [kind for kind in R.KINDS if kind not in rows]
    if missing:
        AlertRule.objects.bulk_create(_default_rows(site, missing), ignore_conflicts=True)
        rows = {r.kind: r for r in AlertRule.objects.filter(site=site).select_related("updated_by")}
    return [rows[kind] for kind in R.KINDS]


def _locked(site) -> dict[str, AlertRule]:
    return {r.kind: r for r in AlertRule.objects.select_for_update().filter(site=site).order_by("pk")}


def _check_shape(changes) -> None:
    if not isinstance(changes, dict):
        raise DomainError("invalid_alert_rules", "Changes must map a rule kind to its new values.")
    unknown = sorted(str(k) for k in changes if k not in R.KINDS)
    if unknown:
        raise DomainError("unknown_rule_kind", f"Unknown rule kind: {', '.join(unknown)}.", details={"kinds": unknown})
    for kind, values in changes.items():
        if not isinstance(values, dict):
            raise DomainError("invalid_alert_rules", f"The values of {kind} must be an object.")
        extra = sorted(str(f) for f in values if f not in FIELDS)
        if extra:
            raise DomainError(
                "unknown_rule_field", f"Unknown field of {kind}: {', '.join(extra)}.",
                details={"kind": kind, "fields": extra},
            )  # fmt: skip


@transaction.atomic
def alert_rules_update(*, site, actor, changes: dict[str, dict]) -> list[AlertRule]:
    """Apply ``changes`` ({kind: {field: value}}, any subset of kinds and fields) to the site's rules.

    Raises DomainError ``invalid_alert_rules`` (400) listing ``{kind: {field: code}}`` in
    ``details["errors"]`` — codes ``threshold_out_of_range``, ``duration_out_of_range``,
    ``invalid_severity``, ``invalid_enabled`` — and then nothing is written. A change to the values a
    rule already has is no change: no row is saved and no event published."""
    _check_shape(changes)
    rows = _locked(site)
    if len(rows) < len(R.KINDS):
        # The defaults go in first (a concurrent first write inserts nothing twice); a refusal below
        # rolls them back with the rest.
        AlertRule.objects.bulk_create(_default_rows(site, [k for k in R.KINDS if k not in rows]), ignore_conflicts=True)
        rows = _locked(site)
    errors: dict[str, dict[str, str]] = {}
    changed: list[AlertRule] = []
    for kind, values in changes.items():
        row = rows[kind]
        new = {field: values.get(field, getattr(row, field)) for field in FIELDS}
        problems = R.validate_rule(
            kind, threshold=new["threshold"], duration_minutes=new["duration_minutes"], severity=new["severity"]
        )
        if not isinstance(new["enabled"], bool):
            problems["enabled"] = "invalid_enabled"
        if problems:
            errors[kind] = problems
            continue
        new["threshold"] = float(new["threshold"])
        if any(getattr(row, field) != new[field] for field in FIELDS):
            for field, value in new.items():
                setattr(row, field, value)
            row.updated_by = actor
            changed.append(row)
    if errors:
        raise DomainError("invalid_alert_rules", "Some alert rule values are not allowed.", details={"errors": errors})
    for row in changed:
        row.save(update_fields=[*FIELDS, "updated_by", "updated_at"])
    if changed:
        kinds = sorted(r.kind for r in changed)
        outbox.publish("alert_rules.changed", aggregate=f"site:{site.pk}", payload={"site_id": site.pk, "kinds": kinds})
        from telemetry.rule_engine import invalidate_rules

        transaction.on_commit(lambda: invalidate_rules([site.pk]))
    return [rows[kind] for kind in R.KINDS]


def alert_rule_list(*, user):
    """The stored rules of the sites ``user`` sees (admin's list)."""
    from sites.selectors import site_list

    return AlertRule.objects.filter(site__in=site_list(user=user)).select_related("site", "updated_by")


def error_messages(kind: str, errors: dict[str, str]) -> dict[str, str]:
    """The refusal codes of one rule as sentences for a form (portal and admin), ranges included."""
    from django.utils.translation import gettext as _

    low, high = R.THRESHOLD_RANGES[kind]
    unit = R.THRESHOLD_UNITS[kind]
    texts = {
        "threshold_out_of_range": (
            _("This rule has no threshold: leave it at 0.")
            if kind == R.OFFLINE_FOR
            else _("Between %(low)s and %(high)s %(unit)s.") % {"low": f"{low:g}", "high": f"{high:g}", "unit": unit}
        ),
        "duration_out_of_range": _("Whole minutes from 0 to %(max)s.") % {"max": R.MAX_DURATION_MINUTES},
        "invalid_severity": _("Choose info, warning or critical."),
        "invalid_enabled": _("Choose on or off."),
    }
    return {field: texts.get(code, code) for field, code in errors.items()}
