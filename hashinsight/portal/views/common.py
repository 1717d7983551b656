"""Decorators shared by the portal pages. Every page reads through a selector, so a hidden object is a 404."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from hashinsight.accounts.roles import Access, has_access


def module_required(module: str, access: Access = Access.READ):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_access(request.user, module, access):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True
