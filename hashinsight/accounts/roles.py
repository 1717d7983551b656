"""The role × module access matrix: the one table and the one check function for *what kind* of
thing a user may do. *Which* objects they may do it to is decided by the selectors (guardian grants
at the site and customer level). README.md renders this table; tests are generated from it.
"""

from __future__ import annotations

from enum import IntEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "OWNER", _("Owner")
    ADMIN = "ADMIN", _("Administrator")
    MINING_SITE_OWNER = "MINING_SITE_OWNER", _("Mining site owner")
    CLIENT = "CLIENT", _("Hosting client")
    CUSTOMER = "CUSTOMER", _("App customer")
    GUEST = "GUEST", _("Guest")


class Module(models.TextChoices):
    BASIC = "BASIC", _("Basic (calculator, dashboard, settings)")
    HOSTING = "HOSTING", _("Hosting (sites, miners, tickets)")
    CURTAILMENT = "CURTAILMENT", _("Curtailment")
    CRM = "CRM", _("CRM (customers, contracts)")
    ANALYTICS = "ANALYTICS", _("Analytics")
    AI = "AI", _("AI")
    USER = "USER", _("User management")
    SYSTEM = "SYSTEM", _("System")
    WEB3 = "WEB3", _("Web3 proofs")
    FINANCE = "FINANCE", _("Finance")
    REPORT = "REPORT", _("Reports")


class Access(IntEnum):
    NONE = 0
    READ = 1
    FULL = 2


_F, _R, _N = Access.FULL, Access.READ, Access.NONE
_COLUMNS = (Role.OWNER, Role.ADMIN, Role.MINING_SITE_OWNER, Role.CLIENT, Role.CUSTOMER, Role.GUEST)

# fmt: off
_ROWS = {
    #                    OWNER ADMIN SITE  CLIENT CUST  GUEST
    Module.BASIC:       (_F,   _F,   _F,   _F,    _F,   _R),
    Module.HOSTING:     (_F,   _F,   _F,   _R,    _N,   _N),
    Module.CURTAILMENT: (_F,   _F,   _F,   _N,    _N,   _N),
    Module.CRM:         (_F,   _F,   _R,   _N,    _N,   _N),
    Module.ANALYTICS:   (_F,   _F,   _F,   _R,    _R,   _N),
    Module.AI:          (_F,   _F,   _F,   _R,    _R,   _N),
    Module.USER:        (_F,   _F,   _N,   _N,    _N,   _N),
    Module.SYSTEM:      (_F,   _F,   _R,   _N,    _N,   _N),
    Module.WEB3:        (_F,   _F,   _R,   _R,    _N,   _N),
    Module.FINANCE:     (_F,   _F,   _R,   _R,    _N,   _N),
    Module.REPORT:      (_F,   _F,   _F,   _R,    _R,   _N),
}
# fmt: on

MATRIX: dict[tuple[str, str], Access] = {
    (role, module): access for module, row in _ROWS.items() for role, access in zip(_COLUMNS, row, strict=True)
}

# Roles whose holders work in Django admin (approvals, grants); everyone else uses the portal and API.
STAFF_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MINING_SITE_OWNER})
# Roles that see every site and customer without object grants.
GLOBAL_ROLES = frozenset({Role.OWNER, Role.ADMIN})


def role_of(user) -> str:
    """Anonymous visitors are guests: they may use the calculator and nothing else."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Role.GUEST
    return user.role


def access_for(user, module: str) -> Access:
    return MATRIX[(role_of(user), module)]


def has_access(user, module: str, needed: Access = Access.READ) -> bool:
    """The one check: does ``user``'s role grant at least ``needed`` on ``module``?"""
    return access_for(user, module) >= needed


def sees_staff_identities(user) -> bool:
    """Operators see which operator entered, recorded or approved something; a hosting client (and anyone else
    outside the staff roles) must not learn staff identities, so the ids and names are left out of what it is shown
    (null in API bodies, no column in pages and CSV files)."""
    return role_of(user) in STAFF_ROLES


def can_manage_role(actor, role: str) -> bool:
    """An OWNER alone manages OWNERs and ADMINs; an ADMIN manages every other role."""
    if not has_access(actor, Module.USER, Access.FULL):
        return False
    return role_of(actor) == Role.OWNER or role not in GLOBAL_ROLES


def matrix_markdown() -> str:
    symbol = {Access.FULL: "F", Access.READ: "R", Access.NONE: "–"}
    head = "| module | " + " | ".join(r.value for r in _COLUMNS) + " |"
    lines = [head, "| --- |" + " --- |" * len(_COLUMNS)]
    for module, row in _ROWS.items():
        lines.append(f"| {module.value} | " + " | ".join(symbol[a] for a in row) + " |")
    return "\n".join(lines)
