"""API tokens: a signed-in user creates, lists and revokes their own; owners and admins also everyone's
whose role they manage. The secret is shown once: it goes from the create request to the next page
through the session and is removed as it is shown, so a reload (or the back button) never shows it again."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from hashinsight.accounts import selectors, services
from hashinsight.accounts.models import ApiToken
from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.portal.forms.tokens import ApiTokenForm, TokenFilterForm
from hashinsight.portal.tables import Column, CsvColumn, ListPage

# Session key holding the one-time secret between the create POST and the page that shows it.
CREATED_KEY = "api_token_created"


class TokenTable(ListPage):
    filter_form = TokenFilterForm
    default_sort = "-created"
    csv_name = "api-tokens"

    def __init__(self, request, form: ApiTokenForm):
        self.create_form = form
        # Owners and admins see other people's tokens, so they get the owner's column and filter.
        self.sees_others = has_access(request.user, Module.USER, Access.FULL)
        user_column = [Column("user", gettext_lazy("User"), sort="user__username")] if self.sees_others else []
        self.columns = [
            Column("name", gettext_lazy("Name"), sort="name"),
            Column("prefix", gettext_lazy("Prefix")),
            *user_column,
            Column("scope", gettext_lazy("Access"), sort="scope"),
            Column("created", gettext_lazy("Created (UTC)"), sort="created_at"),
            Column("expires", gettext_lazy("Expires (UTC)"), sort="expires_at"),
            Column("last_used", gettext_lazy("Last used (UTC)"), sort="last_used_at"),
            Column("status", gettext_lazy("Status")),
            Column("actions", ""),
        ]
        self.csv_columns = [
            CsvColumn(gettext_lazy("Name"), "name"),
            CsvColumn(gettext_lazy("Prefix"), "prefix"),
            CsvColumn(gettext_lazy("User"), "user__username"),
            CsvColumn(gettext_lazy("Access"), "scope", dict(ApiToken.Scope.choices)),
            CsvColumn(gettext_lazy("Created (UTC)"), "created_at"),
            CsvColumn(gettext_lazy("Expires (UTC)"), "expires_at"),
            CsvColumn(gettext_lazy("Last used (UTC)"), "last_used_at"),
            CsvColumn(gettext_lazy("Revoked (UTC)"), "revoked_at"),
        ]
        super().__init__(request)

    def get_queryset(self):
        return selectors.api_token_manageable(user=self.request.user)

    def form_kwargs(self) -> dict:
        return {"sees_others": self.sees_others}

    def context(self) -> dict:
        # Only a GET shows (and so consumes) the new secret: a HEAD, e.g. from a link checker, must not.
        created = self.request.session.pop(CREATED_KEY, None) if self.request.method == "GET" else None
        token = None
        if created is not None:
            token = self.get_queryset().filter(pk=created["id"]).first()
        return {
            "create_form": self.create_form,
            "created": {"token": created["token"], "row": token} if created and token else None,
            "sees_others": self.sees_others,
            "api_base": self.request.build_absolute_uri("/api/v1/"),
        }


def _back_to_list(request):
    """The list with the filters, sort and page it was submitted from (only a query string is taken)."""
    query = QueryDict(request.POST.get("query", "")[:500]).urlencode()
    return redirect(reverse("portal:tokens") + (f"?{query}" if query else ""))


@never_cache  # the page may carry a one-time secret: never kept by a browser or proxy cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def token_list(request):
    if request.method == "POST":
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            token, full = services.api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(),
                scope=form.cleaned_data["scope"],
            )
            request.session[CREATED_KEY] = {"id": token.pk, "token": full}
            return redirect("portal:tokens")
        response = TokenTable(request, form).respond("portal/tokens.html")
        response.status_code = 400
        return response
    return TokenTable(request, ApiTokenForm()).respond("portal/tokens.html")


@login_required
@require_POST
def token_revoke(request, pk: int):
    # Looked up through the selector: someone else's token, without the right to manage it, is a 404.
    token = get_object_or_404(selectors.api_token_manageable(user=request.user), pk=pk)
    if token.revoked_at is None:
        services.api_token_revoke(token=token, actor=request.user)
        messages.success(request, _("Token “%(name)s” revoked; it no longer works.") % {"name": token.name})
    return _back_to_list(request)
