"""Filter forms of the list pages (see ``hashinsight.portal.tables``). Choices that name objects (sites,
alert types, job types) come from what the user can see, so a hidden site id is refused exactly like
a missing one."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hashinsight.events.models import JobRun
from hashinsight.portal.tables import ListFilterForm
from miners.models import Miner
from telemetry.alert_types import alert_type_label
from telemetry.models import Alert


def _site_field() -> forms.TypedChoiceField:
    return forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))


def _set_site_choices(form, sites) -> None:
    form.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]


class SiteFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Name or location"))

    def filter_q(self, qs, value):
        return qs.filter(Q(name__icontains=value) | Q(location__icontains=value) | Q(slug__icontains=value))


class MinerFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Serial, asset tag or worker"))
    site = _site_field()
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *Miner.Status.choices], label=_("Status")
    )
    vendor = forms.CharField(required=False, max_length=60, label=_("Vendor"))
    lookups = {"site": "site_id", "status": "status", "vendor": "model__vendor__iexact"}

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        _set_site_choices(self, sites)

    def filter_q(self, qs, value):
        return qs.filter(Q(serial__icontains=value) | Q(asset_tag__icontains=value) | Q(pool_worker__icontains=value))


UNRESOLVED = "unresolved"
ANY = "any"


class AlertFilterForm(ListFilterForm):
    site = _site_field()
    severity = forms.ChoiceField(
        required=False, choices=[("", _("Any severity")), *Alert.Severity.choices], label=_("Severity")
    )
    # Unresolved (open or acknowledged) unless asked otherwise: what needs attention.
    status = forms.ChoiceField(
        required=False,
        choices=[(UNRESOLVED, _("Unresolved")), *Alert.Status.choices, (ANY, _("Any status"))],
        label=_("Status"),
    )
    alert_type = forms.ChoiceField(required=False, label=_("Type"))
    lookups = {"site": "site_id", "severity": "severity", "alert_type": "alert_type"}
    defaults = {"status": UNRESOLVED}

    def __init__(self, *args, sites=(), alert_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        _set_site_choices(self, sites)
        self.fields["alert_type"].choices = [("", _("Any type")), *[(t, alert_type_label(t)) for t in alert_types]]

    def filter_status(self, qs, value):
        if value == UNRESOLVED:
            return qs.exclude(status=Alert.Status.RESOLVED)
        if value == ANY:
            return qs
        return qs.filter(status=value)


class JobFilterForm(ListFilterForm):
    job_type = forms.ChoiceField(required=False, label=_("Job type"))
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *JobRun.Status.choices], label=_("Status")
    )
    trigger = forms.ChoiceField(
        required=False,
        choices=[("", _("Any trigger")), ("schedule", _("Schedule")), ("manual", _("Manual")), ("event", _("Event"))],
        label=_("Trigger"),
    )
    lookups = {"job_type": "job_type", "status": "status", "trigger": "trigger"}

    def __init__(self, *args, job_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_type"].choices = [("", _("Any job type")), *[(t, t) for t in job_types]]
