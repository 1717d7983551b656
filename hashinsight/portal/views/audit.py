"""The audit chain page (owners and admins: SYSTEM FULL): every recorded change, filtered, sorted and
exported, and a button that verifies the chain (cached for a minute, shared with the API)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Access, Module
from hashinsight.events.api.audit_views import AUDIT_CSV
from hashinsight.events.audit import verify_cached
from hashinsight.events.models import AuditEvent
from hashinsight.portal.tables import Column, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites.models import Site


class AuditFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=200, label=_("Reference or id"))
    event_type = forms.ChoiceField(required=False, label=_("Event type"))
    actor_type = forms.ChoiceField(
        required=False, choices=[("", _("Any actor")), *AuditEvent.ActorType.choices], label=_("Actor type")
    )
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    start = forms.DateField(required=False, label=_("From (UTC date)"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("To (UTC date)"), widget=forms.DateInput(attrs={"type": "date"}))
    lookups = {"event_type": "event_type", "actor_type": "actor_type", "site": "site_id",
               "start": "created_at__date__gte", "end": "created_at__date__lte"}  # fmt: skip

    def __init__(self, *args, event_types=(), sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = [("", _("Any event type")), *[(t, t) for t in event_types]]
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]

    def filter_q(self, qs, value):
        value = value.strip()
        if value.startswith("evt_"):
            return qs.filter(public_id=value)
        return qs.filter(reference=value)


class AuditTable(ListPage):
    columns = [
        Column("seq", _("#"), sort="seq", numeric=True),
        Column("created", _("Created (UTC)"), sort="created_at"),
        Column("event_type", _("Event type"), sort="event_type"),
        Column("actor", _("Actor"), sort="actor_type"),
        Column("site", _("Site")),
        Column("reference", _("Reference"), sort="reference"),
        Column("hash", _("Hash")),
    ]
    csv_columns = AUDIT_CSV
    filter_form = AuditFilterForm
    default_sort = "-seq"
    csv_name = "audit"

    def get_queryset(self):
        # The chain is system-wide: the SYSTEM FULL check at the door grants all of it or none.
        return AuditEvent.objects.select_related("site")

    def form_kwargs(self):
        types = AuditEvent.objects.order_by("event_type").values_list("event_type", flat=True).distinct()
        return {"event_types": types, "sites": Site.objects.order_by("name").only("pk", "name")}

    def context(self):
        verify = verify_cached() if self.request.GET.get("verify") else None
        return {"verify": verify, "verify_url": self.url(verify=1, page=None)}


@module_required(Module.SYSTEM, Access.FULL)
def audit_list(request):
    return AuditTable(request).respond("portal/audit_list.html")
