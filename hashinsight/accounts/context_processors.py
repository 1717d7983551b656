from hashinsight.accounts.roles import Access, Module, has_access, role_of


def access(request):
    """Exposes ``can.<MODULE>`` (READ or better) and ``can_full.<MODULE>`` to templates for menus."""
    user = getattr(request, "user", None)
    return {
        "user_role": role_of(user),
        "can": {m.value: has_access(user, m, Access.READ) for m in Module},
        "can_full": {m.value: has_access(user, m, Access.FULL) for m in Module},
    }
