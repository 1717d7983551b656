"""The form behind "API tokens": a name, an expiry and a scope."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hashinsight.accounts.models import ApiToken
from hashinsight.portal.tables import ListFilterForm

EXPIRY_DAYS = {"30": 30, "90": 90, "365": 365}
# A fixed date is accepted up to this far ahead; longer-lived credentials should be "never" on purpose.
MAX_EXPIRY_DAYS = 5 * 365


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What the token is for, e.g. “Grafana” or “billing export”."),
    )
    expiry = forms.ChoiceField(
        label=_("Expires"),
        choices=[
            ("30", _("In 30 days")),
            ("90", _("In 90 days")),
            ("365", _("In 1 year")),
            ("date", _("On a date")),
            ("never", _("Never")),
        ],
        initial="90",
    )
    expires_on = forms.DateField(
        label=_("Expiry date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Used when “On a date” is chosen; the token stops working at the start of that day (UTC)."),
    )
    scope = forms.ChoiceField(
        label=_("Access"),
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text=_("A read-only token may only read (GET); it is refused on any change."),
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the token a name."))
        return name

    def clean(self):
        data = super().clean()
        expiry, on = data.get("expiry"), data.get("expires_on")
        if expiry != "date" or "expires_on" in self.errors:
            return data
        today = timezone.now().date()
        if on is None:
            self.add_error("expires_on", _("Pick the expiry date."))
        elif on <= today:
            self.add_error("expires_on", _("The expiry date must be after today."))
        elif on > today + timedelta(days=MAX_EXPIRY_DAYS):
            self.add_error("expires_on", _("Pick a date within five years, or choose “Never”."))
        return data

    def expires_at(self) -> datetime | None:
        """The expiry instant (UTC) the choice means, for a valid form."""
        expiry = self.cleaned_data["expiry"]
        if expiry == "never":
            return None
        if expiry == "date":
            return datetime.combine(self.cleaned_data["expires_on"], time.min, tzinfo=UTC)
        return timezone.now() + timedelta(days=EXPIRY_DAYS[expiry])


class TokenFilterForm(ListFilterForm):
    q = forms.CharField(required=False, max_length=100, label=_("Name or prefix"))
    status = forms.ChoiceField(
        required=False,
        label=_("Status"),
        choices=[
            ("", _("Any status")),
            ("active", pgettext_lazy("token status", "Active")),
            ("expired", _("Expired")),
            ("revoked", _("Revoked")),
        ],
    )

    def __init__(self, *args, sees_others: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if sees_others:
            label = _("Name, prefix or user")
            self.fields["q"].label = label
            self.fields["q"].widget.attrs.update({"placeholder": label, "aria-label": label})

    def filter_q(self, qs, value):
        return qs.filter(Q(name__icontains=value) | Q(prefix__icontains=value) | Q(user__username__icontains=value))

    def filter_status(self, qs, value):
        now = timezone.now()
        if value == "revoked":
            return qs.filter(revoked_at__isnull=False)
        if value == "expired":
            return qs.filter(revoked_at__isnull=True, expires_at__lte=now)
        return qs.active()
