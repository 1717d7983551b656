"""Filter forms of the list pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from miners.models import Miner


class MinerFilterForm(forms.Form):
    q = forms.CharField(required=False, label=_("Search"))
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *Miner.Status.choices], label=_("Status")
    )
    vendor = forms.CharField(required=False, label=_("Vendor"))

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All sites")), *[(s.pk, s.name) for s in sites]]
