from django.db.models import Q, QuerySet

from hashinsight.accounts.models import ApiToken, User
from hashinsight.accounts.roles import GLOBAL_ROLES, Access, Module, Role, has_access, role_of


def user_list(*, user) -> QuerySet[User]:
    """Owners and admins see every account (admins may change only non-global roles)."""
    if has_access(user, Module.USER, Access.READ):
        return User.objects.all().order_by("username")
    return User.objects.none()


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_manageable(*, user) -> QuerySet[ApiToken]:
    """Tokens ``user`` may see and revoke: their own; an owner's every token; an admin's also those of
    users whose role they manage (not other owners' and admins', as in ``roles.can_manage_role``)."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    tokens = ApiToken.objects.select_related("user")
    if not has_access(user, Module.USER, Access.FULL):
        return tokens.filter(user=user)
    if role_of(user) == Role.OWNER:
        return tokens.all()
    return tokens.filter(Q(user=user) | ~Q(user__role__in=GLOBAL_ROLES))
