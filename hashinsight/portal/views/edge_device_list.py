"""All edge devices of the sites the user operates, as a list page: sort, filter, CSV.

The site page shows its own devices with their actions; this page is for the operator with many sites
("which collectors have not reported since yesterday?"). Devices are site infrastructure: hosting
clients, whose scope is their own miners, see none (``telemetry.devices.device_list``)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Q, Value, When
from django.utils.translation import gettext_lazy as _

from hashinsight.accounts.roles import Module
from hashinsight.portal.tables import Column, CsvColumn, ListFilterForm, ListPage
from hashinsight.portal.views.common import module_required
from sites.selectors import scope_of, site_list
from telemetry import devices

STATUS_CHOICES = [("active", _("Active")), ("never_seen", _("Never seen")), ("revoked", _("Revoked"))]
_STATUS_Q = {
    "revoked": Q(revoked_at__isnull=False),
    "never_seen": Q(revoked_at__isnull=True, last_seen_at__isnull=True),
    "active": Q(revoked_at__isnull=True, last_seen_at__isnull=False),
}
# The status as the database can sort it: active first, then never seen, then revoked.
STATUS_ORDER = Case(
    When(revoked_at__isnull=False, then=Value(2)), When(last_seen_at__isnull=True, then=Value(1)), default=Value(0)
)


class EdgeDeviceFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Name, version or address"))
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    status = forms.ChoiceField(required=False, choices=[("", _("Any status")), *STATUS_CHOICES], label=_("Status"))
    seen_before = forms.DateField(
        required=False, label=_("Last seen before (UTC date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    lookups = {"site": "site_id"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]

    def filter_q(self, qs, value):
        value = value.strip()
        return qs.filter(Q(name__icontains=value) | Q(version__icontains=value) | Q(last_seen_ip__startswith=value))

    def filter_status(self, qs, value):
        return qs.filter(_STATUS_Q[value])

    def filter_seen_before(self, qs, value):
        # "Quiet since": never seen counts as quiet too, revoked ones are left out unless asked for.
        return qs.filter(Q(last_seen_at__date__lt=value) | Q(last_seen_at__isnull=True))


STATE_LABELS = {0: STATUS_CHOICES[0][1], 1: STATUS_CHOICES[1][1], 2: STATUS_CHOICES[2][1]}


class EdgeDeviceTable(ListPage):
    columns = [
        Column("name", _("Name"), sort="name"),
        Column("site", _("Site"), sort="site__name"),
        Column("status", _("Status"), sort="state"),
        Column("last_seen", _("Last seen (UTC)"), sort="last_seen_at"),
        Column("version", _("Version"), sort="version"),
        Column("address", _("Address")),
        Column("created", _("Enrolled (UTC)"), sort="created_at"),
    ]
    csv_columns = [
        CsvColumn(_("Name"), "name"),
        CsvColumn(_("Site"), "site__name"),
        CsvColumn(_("Zone"), "zone__name"),
        CsvColumn(_("Status"), "state", display=STATE_LABELS),
        CsvColumn(_("Revoked (UTC)"), "revoked_at"),
        CsvColumn(_("Last seen (UTC)"), "last_seen_at"),
        CsvColumn(_("Version"), "version"),
        CsvColumn(_("Address"), "last_seen_ip"),
        CsvColumn(_("Enrolled (UTC)"), "created_at"),
        CsvColumn(_("Credentials rotated (UTC)"), "rotated_at"),
    ]
    filter_form = EdgeDeviceFilterForm
    default_sort = "name"
    csv_name = "edge-devices"

    def get_queryset(self):
        return devices.device_list(user=self.request.user).annotate(state=STATUS_ORDER)

    def form_kwargs(self):
        return {"sites": site_list(user=self.request.user).order_by("name")}


@module_required(Module.HOSTING)
def edge_device_list(request):
    if scope_of(request.user).kind not in ("all", "sites"):
        raise PermissionDenied  # a hosting client's view of a site is its own miners, not the collectors
    return EdgeDeviceTable(request).respond("portal/edge_device_list.html")
