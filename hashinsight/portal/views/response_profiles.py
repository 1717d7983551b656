"""Response profiles and demand-response programmes pages (CURTAILMENT READ to see; FULL and a manage grant on the
site to change): the profiles (sort, filter, CSV; new, edit, delete, make default) and the programmes (sort, filter,
CSV; new, rotate the secret, activate, deactivate, delete).

Reads go through ``intelligence.response_profiles`` selectors (hidden → 404); every write through its services,
whose refusals come back on the form or as a message, never as a server error. A programme's secret goes from the
POST to the page that shows it through the session and is removed as it is shown (as edge device credentials and
API tokens are): a reload or the back button never shows it again, and no cache keeps the page.

``ScopeFields`` (the scope picker: whole site, zones, racks, hosting clients or a miner list) is shared with the
curtailment event form (``views.curtailment_events``); ``static/js/curtailment-events-form.js`` shows only the
input the chosen kind needs."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from intelligence import response_profiles as rp
from intelligence.api.profiles_views import PROGRAM_CSV
from intelligence.models import (
    CurtailmentMode,
    CurtailmentPriority,
    DemandResponseProgram,
    DriftAction,
    ResponseProfile,
    ScopeKind,
)
from sites import selectors as site_selectors

MODULE = Module.CURTAILMENT
SECRET_ONCE_KEY = "dr_program_secret_once"  # noqa: S105 - a session key's name, not a secret
SPLIT = re.compile(r"[\s,;]+")


def _css(form: forms.Form) -> None:
    for field in form.fields.values():
        if isinstance(field.widget, forms.CheckboxInput):
            field.widget.attrs["class"] = "form-check-input"
        elif isinstance(field.widget, forms.SelectMultiple):
            field.widget.attrs["class"] = "form-select"
            field.widget.attrs.setdefault("size", "5")
        else:
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"


def refusal_to_form(form: forms.Form, exc: DomainError, *, fields: dict | None = None) -> None:
    """A service's refusal on the form: on the field it names when the form has one, else above the form."""
    field = (exc.details or {}).get("field")
    field = (fields or {}).get(field, field)
    if field in form.fields:
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


# ---------------------------------------------------------------------------------------------------------
# The scope picker


class ScopeFields(forms.Form):
    """Scope inputs: a kind and, for it, zones or hosting clients (lists of the user's manageable sites) or rack
    names or miner serials (typed, separated by commas, spaces or new lines). ``scope()`` gives the service's form."""

    scope_kind = forms.ChoiceField(choices=ScopeKind.choices, initial=ScopeKind.SITE, label=_("Scope"))
    scope_zones = forms.TypedMultipleChoiceField(coerce=int, required=False, label=_("Zones"))
    scope_customers = forms.TypedMultipleChoiceField(coerce=int, required=False, label=_("Hosting clients"))
    scope_racks = forms.CharField(
        required=False, label=_("Racks"), widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Rack names, separated by commas or new lines."),
    )  # fmt: skip
    scope_miners = forms.CharField(
        required=False, label=_("Miners"), widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Serial numbers, separated by commas or new lines."),
    )  # fmt: skip

    def setup_scope(self, sites) -> None:
        from sites.models import Customer, Zone

        site_ids = [s.pk for s in sites]
        zones = Zone.objects.filter(site_id__in=site_ids).select_related("site").order_by("site__name", "name")
        many = len(site_ids) > 1
        self.fields["scope_zones"].choices = [(z.pk, f"{z.site.name} · {z.name}" if many else z.name) for z in zones]
        customers = Customer.objects.filter(miners__site_id__in=site_ids).distinct().order_by("company")
        self.fields["scope_customers"].choices = [(c.pk, c.company or c.slug) for c in customers]

    def scope(self) -> dict:
        d = self.cleaned_data
        kind = d.get("scope_kind") or ScopeKind.SITE
        if kind == ScopeKind.SITE:
            return {}
        ids = {
            ScopeKind.ZONE: list(d.get("scope_zones") or []),
            ScopeKind.CUSTOMER: list(d.get("scope_customers") or []),
            ScopeKind.RACK: [x for x in SPLIT.split(d.get("scope_racks") or "") if x],
            ScopeKind.MINERS: [x for x in SPLIT.split(d.get("scope_miners") or "") if x],
        }[kind]
        return {"kind": kind, "ids": ids}

    @staticmethod
    def initial_for(scope: dict) -> dict:
        kind = (scope or {}).get("kind") or ScopeKind.SITE
        ids = (scope or {}).get("ids") or []
        out = {"scope_kind": kind}
        if kind == ScopeKind.ZONE:
            out["scope_zones"] = ids
        elif kind == ScopeKind.CUSTOMER:
            out["scope_customers"] = ids
        elif kind == ScopeKind.RACK:
            out["scope_racks"] = ", ".join(map(str, ids))
        elif kind == ScopeKind.MINERS:
            out["scope_miners"] = "\n".join(map(str, ids))
        return out


SCOPE_FIELD = {"scope": "scope_kind"}


def scope_words(scope: dict) -> str:
    """The scope in words for tables (kind and how many ids)."""
    kind = (scope or {}).get("kind") or ScopeKind.SITE
    if kind == ScopeKind.SITE:
        return str(ScopeKind.SITE.label)
    return f"{ScopeKind(kind).label} ({len(scope.get('ids') or [])})"


# ---------------------------------------------------------------------------------------------------------
# Profiles


class ProfileFilterForm(ListFilterForm):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    mode = forms.ChoiceField(required=False, choices=[("", _("Any mode")), *CurtailmentMode.choices], label=_("Mode"))
    priority = forms.ChoiceField(
        required=False, choices=[("", _("Any priority")), *CurtailmentPriority.choices], label=_("Priority")
    )
    q = forms.CharField(required=False, label=_("Name contains"), max_length=80)
    lookups = {"site": "site_id", "mode": "mode", "priority": "priority", "q": "name__icontains"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]


def _mark_changeable(user, rows) -> bool:
    """Mark each row (a profile or programme) ``may_change`` for ``user`` (CURTAILMENT FULL and a manage grant on
    its site); returns whether the user may create one at all (FULL and some manageable site)."""
    manageable = set(site_selectors.manageable_site_list(user=user).values_list("pk", flat=True))
    full = has_access(user, MODULE, Access.FULL)
    for row in rows:
        row.may_change = full and row.site_id in manageable
    return full and bool(manageable)


class ProfileTable(ListPage):
    columns = [
        Column("name", _("Name"), sort="name"),
        Column("site", _("Site"), sort="site__name"),
        Column("mode", _("Mode"), sort="target_kw"),
        Column("priority", _("Priority"), sort="priority"),
        Column("scope", _("Scope")),
        Column("durations", _("Duration (min–max)"), sort="max_duration_minutes", numeric=True),
        Column("restore", _("Restore")),
        Column("actions", _("Actions")),
    ]
    csv_columns = [
        CsvColumn(_("Profile"), "id"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Name"), "name"),
        CsvColumn(_("Mode"), "mode", display=dict(CurtailmentMode.choices)),
        CsvColumn(_("Reduction (kW)"), "target_kw"),
        CsvColumn(_("Priority"), "priority", display=dict(CurtailmentPriority.choices)),
        CsvColumn(_("Scope"), "scope", display=scope_words),
        CsvColumn(_("Minimum duration (min)"), "min_duration_minutes"),
        CsvColumn(_("Maximum duration (min)"), "max_duration_minutes"),
        CsvColumn(_("Restore batch (miners)"), "restore_batch_size"),
        CsvColumn(_("Restore interval (s)"), "restore_interval_seconds"),
        CsvColumn(_("On drift"), "drift_action", display=dict(DriftAction.choices)),
        CsvColumn(_("Site default"), "is_default"),
        CsvColumn(_("Updated (UTC)"), "updated_at"),
    ]
    filter_form = ProfileFilterForm
    default_sort = "site"
    csv_name = "response-profiles"

    def get_queryset(self):
        return rp.profile_list(user=self.request.user)

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name")}

    def context(self):
        for p in self.page.object_list:
            p.scope_words = scope_words(p.scope)
        return {"can_create": _mark_changeable(self.request.user, self.page.object_list)}


@module_required(MODULE)
def profile_list(request):
    return ProfileTable(request).respond("portal/profiles/list.html")


class ProfileForm(ScopeFields):
    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    name = forms.CharField(max_length=80, label=_("Name"))
    mode = forms.ChoiceField(choices=CurtailmentMode.choices, label=_("Mode"))
    target_kw = forms.DecimalField(
        required=False, max_digits=12, decimal_places=3, label=_("Reduction (kW)"),
        help_text=_("For a fixed kW reduction: the kW to shed, least efficient miners first."),
    )  # fmt: skip
    priority = forms.ChoiceField(choices=CurtailmentPriority.choices, label=_("Priority"))
    min_duration_minutes = forms.IntegerField(label=_("Minimum duration (min)"), initial=15)
    max_duration_minutes = forms.IntegerField(label=_("Maximum duration (min)"), initial=240)
    restore_batch_size = forms.IntegerField(label=_("Restore batch (miners)"), initial=50)
    restore_interval_seconds = forms.IntegerField(label=_("Restore interval (s)"), initial=60)
    drift_action = forms.ChoiceField(choices=DriftAction.choices, label=_("A miner that resumes during the event"))
    is_default = forms.BooleanField(required=False, label=_("The site's default profile"))

    field_order = ["site", "name", "mode", "target_kw", "priority", "scope_kind", "scope_zones", "scope_customers",
                   "scope_racks", "scope_miners"]  # fmt: skip

    def __init__(self, *args, sites=(), fixed_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        if fixed_site is not None:  # a profile stays on its site
            self.fields["site"].disabled = True
            self.fields["site"].initial = fixed_site.pk
        self.setup_scope(sites)
        _css(self)

    def body(self) -> dict:
        d = self.cleaned_data
        body = {
            f: d[f]
            for f in ("name", "mode", "priority", "min_duration_minutes", "max_duration_minutes", "restore_batch_size",
                      "restore_interval_seconds", "drift_action", "is_default")
        }  # fmt: skip
        body["target_kw"] = None if d.get("target_kw") is None else str(d["target_kw"])
        body["scope"] = self.scope()
        return body


def _profile(request, pk) -> ResponseProfile:
    try:
        return rp.profile_get(user=request.user, profile_id=pk)
    except DomainError:
        raise Http404 from None


def _may_change(request, site_id: int) -> None:
    from django.core.exceptions import PermissionDenied

    if not rp.may_write(user=request.user, site_id=site_id):
        raise PermissionDenied


@module_required(MODULE, Access.FULL)
def profile_create(request):
    sites = list(site_selectors.manageable_site_list(user=request.user).order_by("name"))
    if request.method == "POST":
        form = ProfileForm(request.POST, sites=sites)
        if form.is_valid():
            try:
                profile = rp.profile_create(actor=request.user, data={"site": form.cleaned_data["site"], **form.body()})
            except DomainError as exc:
                refusal_to_form(form, exc, fields=SCOPE_FIELD)
            else:
                messages.success(request, gettext("Profile “%(name)s” saved.") % {"name": profile.name})
                return redirect("portal:response-profile-list")
    else:
        initial = {"mode": CurtailmentMode.FULL_STOP, "priority": CurtailmentPriority.NORMAL,
                   "drift_action": DriftAction.RECURTAIL, "scope_kind": ScopeKind.SITE}  # fmt: skip
        if request.GET.get("site", "").isdigit():
            initial["site"] = int(request.GET["site"])
        form = ProfileForm(initial=initial, sites=sites)
    return render(request, "portal/profiles/form.html", {"form": form, "profile": None, "has_sites": bool(sites)})


@module_required(MODULE, Access.FULL)
def profile_edit(request, pk: int):
    profile = _profile(request, pk)
    _may_change(request, profile.site_id)
    sites = [profile.site]
    if request.method == "POST":
        form = ProfileForm(request.POST, sites=sites, fixed_site=profile.site)
        if form.is_valid():
            try:
                profile = rp.profile_update(actor=request.user, profile=profile, data=form.body())
            except DomainError as exc:
                refusal_to_form(form, exc, fields=SCOPE_FIELD)
            else:
                messages.success(request, gettext("Profile “%(name)s” saved.") % {"name": profile.name})
                return redirect("portal:response-profile-list")
    else:
        initial = {f: getattr(profile, f) for f in rp.PROFILE_FIELDS if f != "scope"}
        initial.update(site=profile.site_id, **ScopeFields.initial_for(profile.scope))
        form = ProfileForm(initial=initial, sites=sites, fixed_site=profile.site)
    return render(request, "portal/profiles/form.html", {"form": form, "profile": profile, "has_sites": True})


@require_POST
@module_required(MODULE, Access.FULL)
def profile_delete(request, pk: int):
    profile = _profile(request, pk)
    _may_change(request, profile.site_id)
    try:
        rp.profile_delete(actor=request.user, profile=profile)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, gettext("Profile “%(name)s” deleted.") % {"name": profile.name})
    return redirect("portal:response-profile-list")


@require_POST
@module_required(MODULE, Access.FULL)
def profile_make_default(request, pk: int):
    profile = _profile(request, pk)
    _may_change(request, profile.site_id)
    try:
        rp.profile_set_default(actor=request.user, profile=profile)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, gettext("“%(name)s” is now the site's default profile.") % {"name": profile.name})
    return redirect("portal:response-profile-list")


# ---------------------------------------------------------------------------------------------------------
# Programmes


class ProgramFilterForm(ListFilterForm):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    active = forms.ChoiceField(
        required=False, choices=[("", _("Active or not")), ("yes", _("Active")), ("no", _("Inactive"))],
        label=_("Active"),
    )  # fmt: skip
    lookups = {"site": "site_id"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]

    def filter_active(self, qs, value):
        return qs.filter(is_active=value == "yes")


class ProgramTable(ListPage):
    columns = [
        Column("name", _("Name"), sort="name"),
        Column("site", _("Site"), sort="site__name"),
        Column("slug", _("Slug and webhook URL"), sort="slug"),
        Column("profile", _("Response profile"), sort="profile__name"),
        Column("active", _("Status"), sort="is_active"),
        Column("last", _("Last message (UTC)"), sort="last_received_at"),
        Column("actions", _("Actions")),
    ]
    csv_columns = PROGRAM_CSV  # the API's export, column for column
    filter_form = ProgramFilterForm
    default_sort = "site"
    csv_name = "dr-programmes"

    def get_queryset(self):
        return rp.program_list(user=self.request.user)

    def form_kwargs(self):
        return {"sites": site_selectors.site_list(user=self.request.user).order_by("name")}

    def context(self):
        origin = self.request.build_absolute_uri("/").rstrip("/")  # the URL breaks after it at 390 px
        for p in self.page.object_list:
            p.webhook_origin = origin
        return {"can_create": _mark_changeable(self.request.user, self.page.object_list)}


@module_required(MODULE)
def program_list(request):
    return ProgramTable(request).respond("portal/profiles/programs.html")


class ProgramForm(forms.Form):
    site = forms.TypedChoiceField(coerce=int, label=_("Site"))
    name = forms.CharField(max_length=80, label=_("Name"), help_text=_("e.g. the utility and programme: ERCOT ERS."))
    slug = forms.SlugField(
        required=False, max_length=60, label=_("Slug"),
        help_text=_("Part of the webhook URL; made from the name when left empty. It cannot change later."),
    )  # fmt: skip
    profile = forms.TypedChoiceField(coerce=int, label=_("Response profile"),
                                     help_text=_("How the site answers this programme's requests."))  # fmt: skip

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        many = len(sites) > 1
        profiles = ResponseProfile.objects.filter(site__in=sites).select_related("site").order_by("site__name", "name")
        self.fields["profile"].choices = [(p.pk, f"{p.site.name} · {p.name}" if many else p.name) for p in profiles]
        _css(self)


def _program(request, pk) -> DemandResponseProgram:
    try:
        return rp.program_get(user=request.user, program_id=pk)
    except DomainError:
        raise Http404 from None


def _show_once(request, program: DemandResponseProgram, secret: str, *, rotated: bool):
    request.session[SECRET_ONCE_KEY] = {"program_id": program.pk, "secret": secret, "rotated": rotated}
    return redirect("portal:dr-program-secret", pk=program.pk)


@module_required(MODULE, Access.FULL)
def program_create(request):
    sites = list(site_selectors.manageable_site_list(user=request.user).order_by("name"))
    if request.method == "POST":
        form = ProgramForm(request.POST, sites=sites)
        if form.is_valid():
            d = form.cleaned_data
            try:
                program, secret = rp.program_create(
                    actor=request.user,
                    data={"site": d["site"], "name": d["name"], "slug": d["slug"] or None, "profile": d["profile"]},
                )
            except DomainError as exc:
                refusal_to_form(form, exc)
            else:
                return _show_once(request, program, secret, rotated=False)
    else:
        form = ProgramForm(sites=sites)
    has_profiles = bool(form.fields["profile"].choices)
    return render(request, "portal/profiles/program_form.html",
                  {"form": form, "has_sites": bool(sites), "has_profiles": has_profiles})  # fmt: skip


@never_cache
@module_required(MODULE, Access.FULL)
def program_secret(request, pk: int):
    program = _program(request, pk)
    shown = request.session.get(SECRET_ONCE_KEY)
    if not shown or shown.get("program_id") != program.pk:
        shown = None
    elif request.method == "GET":  # a HEAD (a link checker) must not consume it
        del request.session[SECRET_ONCE_KEY]
    return render(request, "portal/profiles/program_secret.html", {
        "program": program, "shown": shown, "webhook_url": request.build_absolute_uri(rp.webhook_path(program)),
    })  # fmt: skip


@require_POST
@module_required(MODULE, Access.FULL)
def program_rotate(request, pk: int):
    program = _program(request, pk)
    _may_change(request, program.site_id)
    try:
        program, secret = rp.program_rotate(actor=request.user, program=program)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("portal:dr-program-list")
    return _show_once(request, program, secret, rotated=True)


@require_POST
@module_required(MODULE, Access.FULL)
def program_set_active(request, pk: int):
    program = _program(request, pk)
    _may_change(request, program.site_id)
    active = request.POST.get("active") == "1"
    try:
        rp.program_set_active(actor=request.user, program=program, active=active)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        text = gettext("Programme “%(name)s” activated.") if active else gettext("Programme “%(name)s” deactivated.")
        messages.success(request, text % {"name": program.name})
    return redirect("portal:dr-program-list")


@require_POST
@module_required(MODULE, Access.FULL)
def program_delete(request, pk: int):
    program = _program(request, pk)
    _may_change(request, program.site_id)
    rp.program_delete(actor=request.user, program=program)
    messages.success(request, gettext("Programme “%(name)s” deleted.") % {"name": program.name})
    return redirect("portal:dr-program-list")
