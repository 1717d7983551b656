from django.db.models import QuerySet

from hashinsight.accounts.models import ApiToken, User
from hashinsight.accounts.roles import Access, Module, has_access


def user_list(*, user) -> QuerySet[User]:
    """Owners and admins see every account (admins may change only non-global roles)."""
    if has_access(user, Module.USER, Access.READ):
        return User.objects.all().order_by("username")
    return User.objects.none()


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)
