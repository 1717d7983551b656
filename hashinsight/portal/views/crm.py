"""CRM pages (module CRM: READ to see, FULL to change): the deals (sort, filter by stage, owner, client and site, CSV,
the pipeline per stage with value and MW), a deal (stage buttons, "Convert to contract") and its form; the hosting
contracts (sort, filter, CSV), a contract (tariff, SLA schedule, curtailment terms, miners covered, the signed
document, Activate / End / Terminate, its invoices) and its form, the miners a contract covers.

Reads go through ``sites.crm_selectors`` (a hidden row is a 404); every write through ``sites.crm_services``,
whose refusals come back on the form (under the field they name) or as a message, never as a server error. Site
owners read their sites' rows with no buttons; a write they try anyway is a 403."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from hashinsight.accounts.roles import Access, Module
from hashinsight.core.errors import DomainError
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from miners.models import MinerStatus
from sites import crm_selectors as sel
from sites import crm_services as svc
from sites.api.crm_serializers import sales_users
from sites.api.crm_views import CONTRACT_CSV, DEAL_CSV, document_response, refuse_oversized_upload
from sites.models import Deal, HostingContract, TariffKind
from sites.selectors import customer_list, site_list

MODULE = Module.CRM


def _css(form: forms.Form) -> None:
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, forms.Select):
            widget.attrs.setdefault("class", "form-select")
        else:
            widget.attrs.setdefault("class", "form-control")


def _refusal_to_form(form: forms.Form, exc: DomainError) -> None:
    """A service's refusal under the field it names (when the form has it), else above the form."""
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if field in form.fields:
        form.add_error(field, exc.message)
        return
    if exc.code == "invalid" and isinstance(exc.details, dict) and exc.details:
        for name, errors in exc.details.items():
            text = " ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
            form.add_error(name if name in form.fields else None, text)
        return
    form.add_error(None, exc.message)


def _writer(request) -> None:
    if not sel.may_write(user=request.user):
        raise PermissionDenied


def _int_pk(pk) -> int:
    if pk > sel.MAX_ID:
        raise Http404
    return pk


def _deal(request, pk: int) -> Deal:
    try:
        return sel.deal_get(user=request.user, deal_id=_int_pk(pk))
    except DomainError:
        raise Http404 from None


def _contract(request, pk: int) -> HostingContract:
    try:
        return sel.contract_get(user=request.user, contract_id=_int_pk(pk))
    except DomainError:
        raise Http404 from None


def _choices(blank, qs, label=str):
    return [("", blank), *[(o.pk, label(o)) for o in qs]]


# ---------------------------------------------------------------------------------------------------------
# Deals


class DealFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Title or company"))
    stage = forms.ChoiceField(required=False, choices=[("", _("Any stage")), *Deal.Stage.choices], label=_("Stage"))
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Sales owner"))
    customer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Hosting client"))
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    lookups = {"stage": "stage", "owner": "owner_id", "customer": "customer_id", "site": "site_id"}

    def __init__(self, *args, owners=(), customers=(), sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = _choices(_("Any sales owner"), owners, lambda u: u.username)
        self.fields["customer"].choices = _choices(_("Any client"), customers)
        self.fields["site"].choices = _choices(_("All sites"), sites)

    def filter_q(self, qs, value):
        from django.db.models import Q

        return qs.filter(Q(title__icontains=value) | Q(prospect_company__icontains=value)
                         | Q(customer__company__icontains=value))  # fmt: skip


class DealTable(ListPage):
    columns = [
        Column("title", _("Deal"), sort="title"),
        Column("company", _("Company"), sort="customer__company"),
        Column("site", _("Site"), sort="site__name"),
        Column("stage", _("Stage"), sort="stage"),
        Column("miners", _("Miners"), sort="expected_miners", numeric=True),
        Column("mw", _("Load"), sort="expected_mw", numeric=True),
        Column("value", _("Value"), sort="value", numeric=True),
        Column("owner", _("Sales owner"), sort="owner__username"),
        Column("close", _("Expected close"), sort="expected_close"),
        Column("updated", _("Updated (UTC)"), sort="updated_at"),
    ]
    csv_columns = DEAL_CSV
    filter_form = DealFilterForm
    default_sort = "-updated"
    csv_name = "deals"

    def get_queryset(self):
        return sel.deal_list(user=self.request.user)

    def form_kwargs(self):
        user = self.request.user
        return {"owners": sales_users(), "customers": customer_list(user=user).order_by("company"),
                "sites": site_list(user=user).order_by("name")}  # fmt: skip

    def context(self):
        return {"pipeline": sel.pipeline_summary(self.filtered), "can_write": sel.may_write(user=self.request.user)}


@module_required(MODULE)
def deal_list(request):
    return DealTable(request).respond("portal/crm/deal_list.html")


class ServiceForm(forms.Form):
    """A form with a model's fields (``fields_for_model``) but none of ModelForm's instance validation: the service
    checks the model (types, constraints, uniqueness) and the domain rules once, with its own messages, and they come
    back under the field they name (``_refusal_to_form``). ``instance`` fills the initial values."""

    model = None
    field_names: list[str] = []
    widgets: dict = {}

    def __init__(self, *args, instance=None, initial=None, **kwargs):
        start = forms.models.model_to_dict(instance, fields=self.field_names) if instance is not None else {}
        super().__init__(*args, initial={**start, **(initial or {})}, **kwargs)
        extra = dict(self.fields)
        self.fields = forms.fields_for_model(self.model, fields=self.field_names, widgets=self.widgets)
        self.fields.update(extra)
        self.instance = instance


DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class DealForm(ServiceForm):
    model = Deal
    field_names = ["title", "customer", "prospect_company", "contact_name", "contact_email", "site", "stage",
                   "expected_miners", "expected_mw", "value", "currency", "owner", "expected_close",
                   "notes"]  # fmt: skip
    widgets = {"expected_close": DATE, "notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customer_list(user=user).order_by("company")
        self.fields["site"].queryset = site_list(user=user).order_by("name")
        self.fields["owner"].queryset = sales_users()
        self.fields["customer"].help_text = _("Or, for a prospect, fill in its company instead.")
        _css(self)


def _deal_form(request, deal: Deal | None):
    _writer(request)
    if request.method == "POST":
        form = DealForm(request.POST, instance=deal, user=request.user)
        if form.is_valid():
            names = form.changed_data if deal else form.field_names
            fields = {n: form.cleaned_data[n] for n in names if n in form.field_names}
            try:
                if deal is None:
                    deal = svc.deal_create(actor=request.user, **fields)
                    messages.success(request, gettext("Deal saved."))
                else:
                    deal = svc.deal_update(actor=request.user, deal=deal, **fields)
                    messages.success(request, gettext("Deal saved."))
                return redirect("portal:crm-deal-detail", pk=deal.pk)
            except DomainError as exc:
                _refusal_to_form(form, exc)
    else:
        form = DealForm(instance=deal, user=request.user, initial=None if deal else {"owner": request.user.pk})
    return render(request, "portal/crm/deal_form.html", {"form": form, "deal": deal})


@module_required(MODULE, Access.FULL)
def deal_create(request):
    return _deal_form(request, None)


@module_required(MODULE, Access.FULL)
def deal_edit(request, pk: int):
    return _deal_form(request, _deal(request, pk))


@module_required(MODULE)
def deal_detail(request, pk: int):
    deal = _deal(request, pk)
    contracts = sel.contract_list(user=request.user).filter(deal=deal).order_by("-start_date")
    # The client's hosting rate is in USD: the default of a deal in USD only (the service refuses it otherwise).
    rate = deal.customer.hosting_rate_usd_per_kwh if deal.customer_id and deal.currency == "USD" else None
    return render(request, "portal/crm/deal_detail.html", {
        "deal": deal, "contracts": contracts, "can_write": sel.may_write(user=request.user),
        "stages": Deal.Stage.choices, "default_rate": rate, "tariff_kinds": TariffKind.choices,
        # Convert is offered while the deal has no live contract (a terminated one may be replaced, as the service
        # allows).
        "may_convert": not any(c.status != HostingContract.Status.TERMINATED for c in contracts),
    })  # fmt: skip


@require_POST
@module_required(MODULE, Access.FULL)
def deal_stage(request, pk: int):
    deal = _deal(request, pk)
    try:
        deal = svc.deal_set_stage(actor=request.user, deal=deal, stage=request.POST.get("stage", ""))
        messages.success(request, gettext("Stage: %(stage)s.") % {"stage": deal.get_stage_display()})
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("portal:crm-deal-detail", pk=pk)


def _decimal_or_none(raw: str, field: str):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise DomainError("invalid", gettext("Enter a number."), details={"field": field}) from None
    if not value.is_finite():
        raise DomainError("invalid", gettext("Enter a number."), details={"field": field})
    return value


@require_POST
@module_required(MODULE, Access.FULL)
def deal_convert(request, pk: int):
    deal = _deal(request, pk)
    try:
        tariff = {"tariff_kind": request.POST.get("tariff_kind") or TariffKind.ALL_IN_KWH}
        for name in ("rate_per_kwh", "fixed_fee_per_miner_month", "revenue_share_pct"):
            value = _decimal_or_none(request.POST.get(name, ""), name)
            if value is not None:
                tariff[name] = value
        if len(tariff) == 1 and tariff["tariff_kind"] == TariffKind.ALL_IN_KWH:
            tariff = {}  # the client's hosting rate
        start = _date_field(request, "start_date")
        contract, created = svc.deal_convert(actor=request.user, deal=deal, start_date=start, **tariff)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("portal:crm-deal-detail", pk=pk)
    if created:
        messages.success(request, gettext("Draft contract %(n)s created: check its terms, then activate it.")
                         % {"n": contract.number})  # fmt: skip
    else:
        messages.info(request, gettext("This deal is already contract %(n)s.") % {"n": contract.number})
    return redirect("portal:crm-contract-detail", pk=contract.pk)


# ---------------------------------------------------------------------------------------------------------
# Contracts


class ContractFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Number or client"))
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *HostingContract.Status.choices], label=_("Status")
    )
    tariff_kind = forms.ChoiceField(required=False, choices=[("", _("Any tariff")), *TariffKind.choices],
                                    label=_("Tariff"))  # fmt: skip
    customer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Hosting client"))
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    lookups = {"status": "status", "tariff_kind": "tariff_kind", "customer": "customer_id", "site": "site_id"}

    def __init__(self, *args, customers=(), sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].choices = _choices(_("Any client"), customers)
        self.fields["site"].choices = _choices(_("All sites"), sites)

    def filter_q(self, qs, value):
        from django.db.models import Q

        return qs.filter(Q(number__icontains=value) | Q(customer__company__icontains=value))


class ContractTable(ListPage):
    columns = [
        Column("number", _("Contract"), sort="number"),
        Column("customer", _("Hosting client"), sort="customer__company"),
        Column("site", _("Site"), sort="site__name"),
        Column("status", _("Status"), sort="status"),
        Column("term", _("Term"), sort="start_date"),
        Column("tariff", _("Tariff"), sort="tariff_kind"),
        Column("sla", _("SLA target"), sort="sla_uptime_target_pct", numeric=True),
        Column("miners", _("Miners listed"), sort="n_miners", numeric=True),
        Column("signed", _("Signed"), sort="signed_at"),
    ]
    csv_columns = CONTRACT_CSV
    filter_form = ContractFilterForm
    default_sort = "-term"
    csv_name = "contracts"

    def get_queryset(self):
        return sel.contract_list(user=self.request.user).annotate(n_miners=Count("miners"))

    def form_kwargs(self):
        user = self.request.user
        return {
            "customers": customer_list(user=user).order_by("company"),
            "sites": site_list(user=user).order_by("name"),
        }

    def context(self):
        return {"can_write": sel.may_write(user=self.request.user)}


@module_required(MODULE)
def contract_list(request):
    return ContractTable(request).respond("portal/crm/contract_list.html")


# xgettext:no-python-format
SLA_HELP = _("One step per line, highest threshold first: “97: 5” means below 97 % uptime, 5 % of the month's charge "
             "is credited.")  # fmt: skip


def sla_to_text(schedule) -> str:
    return "\n".join(f"{s['below_pct']}: {s['credit_pct']}" for s in schedule or [])


def sla_from_text(text: str) -> list[dict]:
    steps = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        below, sep, credit = line.partition(":")
        if not sep:
            raise forms.ValidationError(gettext("Write each step as “below %: credit %”, e.g. “97: 5”."))
        steps.append({"below_pct": below.strip().rstrip("%").strip(), "credit_pct": credit.strip().rstrip("%").strip()})
    return steps


class ContractForm(ServiceForm):
    model = HostingContract
    field_names = ["number", "customer", "site", "deal", "start_date", "end_date", "currency", "deposit",
                   "payment_terms_days", "tariff_kind", "energy_basis", "rate_per_kwh", "fixed_fee_per_miner_month",
                   "revenue_share_pct", "sla_uptime_target_pct", "curtailment_allowance_hours",
                   "curtailment_credit_kind", "curtailment_credit_per_miner_hour", "curtailment_priority", "firm",
                   "sales_owner", "commission_pct", "notes"]  # fmt: skip
    widgets = {"start_date": DATE, "end_date": DATE, "notes": forms.Textarea(attrs={"rows": 3})}
    sla_schedule_text = forms.CharField(required=False, label=_("SLA credit schedule"), help_text=SLA_HELP,
                                        widget=forms.Textarea(attrs={"rows": 3}))  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customer_list(user=user).order_by("company")
        self.fields["site"].queryset = site_list(user=user).order_by("name")
        self.fields["deal"].queryset = sel.deal_list(user=user).order_by("title")
        self.fields["sales_owner"].queryset = sales_users()
        self.fields["number"].required = False
        self.fields["number"].help_text = _("Left empty: HC-<year>-<n>.")
        for name in ("deposit", "rate_per_kwh", "fixed_fee_per_miner_month", "curtailment_credit_per_miner_hour"):
            self.fields[name].help_text = _("In the contract's currency.")
        if self.instance is not None:
            self.initial.setdefault("sla_schedule_text", sla_to_text(self.instance.sla_credit_schedule))
            if self.instance.status == HostingContract.Status.ACTIVE:
                for name in ("number", "customer", "site"):  # an active contract keeps them (the service says so)
                    self.fields[name].disabled = True
        _css(self)

    def clean_sla_schedule_text(self):
        return sla_from_text(self.cleaned_data.get("sla_schedule_text", ""))

    def service_fields(self, *, changed_only: bool) -> dict:
        names = self.changed_data if changed_only else list(self.fields)
        out = {n: self.cleaned_data[n] for n in names if n in self.field_names}
        if not changed_only or "sla_schedule_text" in self.changed_data:
            out["sla_credit_schedule"] = self.cleaned_data["sla_schedule_text"]
        if not changed_only and not out.get("number"):
            out.pop("number", None)  # the service numbers it
        return out


def _contract_form(request, contract: HostingContract | None):
    _writer(request)
    if contract is not None and contract.status in (HostingContract.Status.ENDED, HostingContract.Status.TERMINATED):
        messages.error(request, gettext("An ended or terminated contract does not change."))
        return redirect("portal:crm-contract-detail", pk=contract.pk)
    if request.method == "POST":
        form = ContractForm(request.POST, instance=contract, user=request.user)
        if form.is_valid():
            try:
                if contract is None:
                    contract = svc.contract_create(actor=request.user, **form.service_fields(changed_only=False))
                else:
                    contract = svc.contract_update(actor=request.user, contract=contract,
                                                   **form.service_fields(changed_only=True))  # fmt: skip
                messages.success(request, gettext("Contract %(n)s saved.") % {"n": contract.number})
                return redirect("portal:crm-contract-detail", pk=contract.pk)
            except DomainError as exc:
                if exc.code == "invalid_sla_schedule":
                    form.add_error("sla_schedule_text", exc.message)
                else:
                    _refusal_to_form(form, exc)
    else:
        initial = {}
        if contract is None:
            for name in ("customer", "site", "deal"):
                if request.GET.get(name, "").isdigit():
                    initial[name] = int(request.GET[name])
            initial["sla_schedule_text"] = "97: 5\n95: 10"
        form = ContractForm(instance=contract, user=request.user, initial=initial)
    return render(request, "portal/crm/contract_form.html", {"form": form, "contract": contract})


@module_required(MODULE, Access.FULL)
def contract_create(request):
    return _contract_form(request, None)


@module_required(MODULE, Access.FULL)
def contract_edit(request, pk: int):
    return _contract_form(request, _contract(request, pk))


@module_required(MODULE)
def contract_detail(request, pk: int):
    contract = _contract(request, pk)
    S = HostingContract.Status
    can_write = sel.may_write(user=request.user)
    listed = contract.miners.count()
    return render(request, "portal/crm/contract_detail.html", {
        "contract": contract, "can_write": can_write,
        "may_activate": can_write and contract.status == S.DRAFT,
        "may_end": can_write and contract.status == S.ACTIVE,
        "may_terminate": can_write and contract.status in (S.DRAFT, S.ACTIVE),
        "may_edit": can_write and contract.status in (S.DRAFT, S.ACTIVE),
        "miners_listed": listed, "miners_covered": sel.contract_miner_count(contract),
        "currency": contract.currency, "max_mb": svc.DOCUMENT_MAX_BYTES // (1024 * 1024),
    })  # fmt: skip


def _state_change(request, pk: int, action):
    contract = _contract(request, pk)
    try:
        contract = action(contract)
        messages.success(request, gettext("Contract %(n)s: %(status)s.") % {
            "n": contract.number, "status": contract.get_status_display()})  # fmt: skip
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("portal:crm-contract-detail", pk=pk)


def _date_field(request, name: str):
    raw = request.POST.get(name, "")
    if not raw:
        return None
    try:
        day = parse_date(raw)
    except ValueError:
        day = None
    if day is None:
        raise DomainError("invalid", gettext("Enter a valid date."), details={"field": name})
    return day


@require_POST
@module_required(MODULE, Access.FULL)
def contract_activate(request, pk: int):
    return _state_change(request, pk, lambda c: svc.contract_activate(actor=request.user, contract=c))


@require_POST
@module_required(MODULE, Access.FULL)
def contract_end(request, pk: int):
    return _state_change(request, pk, lambda c: svc.contract_end(
        actor=request.user, contract=c, end_date=_date_field(request, "end_date")))  # fmt: skip


@require_POST
@module_required(MODULE, Access.FULL)
def contract_terminate(request, pk: int):
    return _state_change(request, pk, lambda c: svc.contract_terminate(
        actor=request.user, contract=c, reason=request.POST.get("reason", ""),
        end_date=_date_field(request, "end_date")))  # fmt: skip


@module_required(MODULE)
def contract_document(request, pk: int):
    contract = _contract(request, pk)
    if request.method == "POST":
        _writer(request)
        try:
            refuse_oversized_upload(request)
            upload = request.FILES.get("document")
            if upload is None:
                raise DomainError("invalid", gettext("Choose the signed document's file."))
            svc.contract_upload_document(actor=request.user, contract=contract, upload=upload,
                                         signed_at=_date_field(request, "signed_at"))  # fmt: skip
            messages.success(request, gettext("Signed document stored; its SHA-256 is in the audit chain."))
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("portal:crm-contract-detail", pk=pk)
    try:
        return document_response(contract)
    except DomainError:
        raise Http404 from None


class CoveredMinerFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=64, label=_("Serial"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *MinerStatus.choices],
                               label=_("Status"))  # fmt: skip
    lookups = {"q": "serial__icontains", "status": "status"}


class CoveredMinerTable(ListPage):
    """The miners a contract covers (``crm_selectors.covered_miners``): sort, filter, CSV."""

    columns = [
        Column("serial", _("Serial"), sort="serial"),
        Column("model", _("Model"), sort="model__name"),
        Column("zone", _("Zone"), sort="zone__name"),
        Column("rack", _("Rack"), sort="rack"),
        Column("status", _("Status"), sort="status"),
    ]
    csv_columns = [
        CsvColumn(_("Miner"), "id"),
        CsvColumn(_("Serial"), "serial"),
        CsvColumn(_("Model"), "model__name"),
        CsvColumn(_("Zone"), "zone__name"),
        CsvColumn(_("Rack"), "rack"),
        CsvColumn(_("Status"), "status", display=dict(MinerStatus.choices)),
    ]
    filter_form = CoveredMinerFilterForm
    default_sort = "serial"

    def __init__(self, request, contract: HostingContract, extra: dict):
        self.contract, self.extra = contract, extra
        self.csv_name = f"contract-{contract.pk}-miners"
        super().__init__(request)

    def get_queryset(self):
        return sel.covered_miners(self.contract).select_related("model", "zone")

    def context(self):
        covered = sel.covered_miners(self.contract)
        return {"contract": self.contract, "listed": self.contract.miners.exists(), "total": covered.count(),
                **self.extra}  # fmt: skip


@module_required(MODULE)
def contract_miners(request, pk: int):
    contract = _contract(request, pk)
    can_write = sel.may_write(user=request.user) and contract.status in (
        HostingContract.Status.DRAFT, HostingContract.Status.ACTIVE)  # fmt: skip
    text = None
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied
        text = request.POST.get("miners", "")
        serials = [s.strip() for s in text.replace(",", "\n").splitlines() if s.strip()]
        try:
            n = svc.contract_set_miners(actor=request.user, contract=contract, miners=serials)
            if n:
                messages.success(request, gettext("%(n)s miners listed.") % {"n": n})
            else:
                messages.success(request, gettext("No miner listed: the contract covers every miner of the client "
                                                  "at the site."))  # fmt: skip
            return redirect("portal:crm-contract-miners", pk=pk)
        except DomainError as exc:
            messages.error(request, exc.message)
    if text is None:
        text = "\n".join(contract.miners.order_by("serial").values_list("serial", flat=True)[:10_000])
    table = CoveredMinerTable(request, contract, {"can_write": can_write, "text": text})
    return table.respond("portal/crm/contract_miners.html")
