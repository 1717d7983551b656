"""An app customer's portfolio in the page: add, edit and remove entries (writes via miners.services).

An entry of another user is a 404, like a missing one: every lookup goes through ``portfolio_list``."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from hashinsight.accounts.roles import Access, Module
from hashinsight.core import cache as cache_helper
from hashinsight.portal.forms.portfolio import PortfolioEntryForm
from hashinsight.portal.views.common import module_required
from miners import selectors, services

portfolio_required = module_required(Module.BASIC, Access.FULL)


def _refresh_summary(user) -> None:
    # The portfolio.changed event's recalculation runs later on a worker; the dashboard the user is
    # sent back to must already show the change, so rebuild this one small entry now.
    cache_helper.build_and_store("user_portfolio", id=user.pk)


def _save(request, form, write) -> bool:
    if not form.is_valid():
        return False
    try:
        write(form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    _refresh_summary(request.user)
    return True


@portfolio_required
def portfolio_add(request):
    form = PortfolioEntryForm(request.POST or None, initial=PortfolioEntryForm.initial_values())
    if request.method == "POST" and _save(
        request, form, lambda data: services.portfolio_entry_create(user=request.user, **data)
    ):
        messages.success(request, _("Added to your portfolio."))
        return redirect("portal:dashboard")
    return render(request, "portal/portfolio_form.html", {"form": form, "entry": None})


@portfolio_required
def portfolio_edit(request, pk: int):
    entry = get_object_or_404(selectors.portfolio_list(user=request.user), pk=pk)
    # The form edits a copy, so a refused edit leaves ``entry`` as it is stored.
    form = PortfolioEntryForm(request.POST or None, instance=copy.copy(entry))
    if request.method == "POST" and _save(
        request, form, lambda data: services.portfolio_entry_update(entry=entry, **data)
    ):
        messages.success(request, _("Portfolio entry saved."))
        return redirect("portal:dashboard")
    return render(request, "portal/portfolio_form.html", {"form": form, "entry": entry})


@portfolio_required
def portfolio_delete(request, pk: int):
    entry = get_object_or_404(selectors.portfolio_list(user=request.user), pk=pk)
    if request.method == "POST":
        services.portfolio_entry_delete(entry=entry)
        _refresh_summary(request.user)
        messages.success(request, _("Removed from your portfolio."))
        return redirect("portal:dashboard")
    return render(request, "portal/portfolio_confirm_delete.html", {"entry": entry})
