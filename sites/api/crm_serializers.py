"""Serializers and filters of the CRM API (deals, hosting contracts). They check types and references (a hidden
client, site or deal reads as "does not exist", like a missing one); the rules live in ``sites.crm_services``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django_filters import rest_framework as filters
from rest_framework import serializers

from hashinsight.accounts.roles import GLOBAL_ROLES
from hashinsight.core.api.fields import ScopedPrimaryKeyRelatedField
from hashinsight.core.api.filters import scoped_choice
from sites import crm_selectors
from sites.models import Deal, HostingContract
from sites.selectors import customer_list, site_list


def sales_users(**_kwargs):
    """Who may own a deal or a contract's commission: active owners and administrators."""
    return get_user_model().objects.filter(is_active=True, role__in=list(GLOBAL_ROLES)).order_by("username")


def _sales_users_for_filter(request):
    return sales_users()


class DealSerializer(serializers.ModelSerializer):
    customer = ScopedPrimaryKeyRelatedField(customer_list, allow_null=True, required=False)
    site = ScopedPrimaryKeyRelatedField(site_list, allow_null=True, required=False)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=sales_users(), required=False, help_text="sales owner (an owner or admin); default: you"
    )
    customer_name = serializers.CharField(source="customer.company", read_only=True, default=None)
    site_name = serializers.CharField(source="site.name", read_only=True, default=None)
    owner_username = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Deal
        fields = [
            "id", "title", "customer", "customer_name", "prospect_company", "contact_name", "contact_email", "site",
            "site_name", "stage", "expected_miners", "expected_mw", "value", "currency", "owner", "owner_username",
            "expected_close", "notes", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # the model's constraints are checked by the service (full_clean), once

    def get_fields(self):
        fields = super().get_fields()
        fields["owner"].queryset = sales_users()
        return fields


class StageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Deal.Stage.choices)


class ConvertSerializer(serializers.Serializer):
    start_date = serializers.DateField(required=False, help_text="default: the deal's expected close, else today")
    tariff_kind = serializers.CharField(
        required=False, help_text="all_in_kwh | kwh_plus_fixed | revenue_share; default all_in_kwh"
    )
    rate_per_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=5, required=False, help_text="default: the client's hosting rate"
    )
    fixed_fee_per_miner_month = serializers.DecimalField(max_digits=10, decimal_places=2, required=False)
    revenue_share_pct = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)


class SlaStepSerializer(serializers.Serializer):
    below_pct = serializers.CharField(max_length=12, help_text='uptime below this % (e.g. "97")')
    credit_pct = serializers.CharField(max_length=12, help_text="credit in % of the month's charge")


class ContractSerializer(serializers.ModelSerializer):
    customer = ScopedPrimaryKeyRelatedField(customer_list)
    site = ScopedPrimaryKeyRelatedField(site_list)
    deal = ScopedPrimaryKeyRelatedField(crm_selectors.deal_list, allow_null=True, required=False)
    sales_owner = serializers.PrimaryKeyRelatedField(
        queryset=sales_users(), allow_null=True, required=False, help_text="earns commission_pct of each paid invoice"
    )
    number = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="default HC-<year>-<n>")
    # Text, not an enum: other components' "status" enums would collide in the schema's names.
    status = serializers.CharField(read_only=True, help_text="draft | active | ended | terminated")
    sla_credit_schedule = SlaStepSerializer(many=True, required=False, help_text="thresholds strictly descending")
    customer_name = serializers.CharField(source="customer.company", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    has_document = serializers.SerializerMethodField()
    miners_listed = serializers.IntegerField(read_only=True, required=False, help_text="0: every miner of the client "
                                             "at the site")  # fmt: skip

    class Meta:
        model = HostingContract
        fields = [
            "id", "number", "customer", "customer_name", "site", "site_name", "deal", "status", "start_date",
            "end_date", "currency", "deposit", "payment_terms_days", "tariff_kind", "energy_basis", "rate_per_kwh",
            "fixed_fee_per_miner_month", "revenue_share_pct", "sla_uptime_target_pct", "sla_credit_schedule",
            "curtailment_allowance_hours", "curtailment_credit_kind", "curtailment_credit_per_miner_hour",
            "curtailment_priority", "firm", "sales_owner", "commission_pct", "has_document",
            "signed_document_sha256", "signed_at", "miners_listed", "notes", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "signed_document_sha256", "signed_at", "created_at", "updated_at"]
        validators = []

    def get_fields(self):
        fields = super().get_fields()
        fields["sales_owner"].queryset = sales_users()
        return fields

    def get_has_document(self, obj) -> bool:
        return bool(obj.signed_document)


class EndSerializer(serializers.Serializer):
    end_date = serializers.DateField(required=False, help_text="default today")


class TerminateSerializer(EndSerializer):
    reason = serializers.CharField(max_length=300)


class MinersSerializer(serializers.Serializer):
    miners = serializers.ListField(
        child=serializers.JSONField(), max_length=100_000,
        help_text="miner ids (numbers) and/or serials (text) of the client at the site; [] = all of them",
    )  # fmt: skip


class MinersResultSerializer(serializers.Serializer):
    miners_listed = serializers.IntegerField()
    miners_covered = serializers.IntegerField()
    miners = serializers.ListField(child=serializers.DictField(), help_text="[{id, serial}] of the listed miners")


class DocumentSerializer(serializers.Serializer):
    document = serializers.FileField(help_text="PDF, PNG or JPEG, at most 10 MB")
    signed_at = serializers.DateField(required=False, help_text="default today")


class DealFilter(filters.FilterSet):
    customer = scoped_choice(customer_list)
    site = scoped_choice(site_list)
    owner = filters.ModelChoiceFilter(queryset=_sales_users_for_filter)
    open = filters.BooleanFilter(method="filter_open", label="not won or lost")

    class Meta:
        model = Deal
        fields = ["stage", "customer", "site", "owner", "currency"]

    def filter_open(self, queryset, name, value):
        closed = Q(stage__in=[Deal.Stage.WON, Deal.Stage.LOST])
        return queryset.exclude(closed) if value else queryset.filter(closed)


class ContractFilter(filters.FilterSet):
    customer = scoped_choice(customer_list)
    site = scoped_choice(site_list)
    deal = scoped_choice(crm_selectors.deal_list)
    sales_owner = filters.ModelChoiceFilter(queryset=_sales_users_for_filter)
    status = filters.ChoiceFilter(choices=HostingContract.Status.choices)
    active_on = filters.DateFilter(method="filter_active_on", label="active on this date")

    class Meta:
        model = HostingContract
        fields = ["status", "customer", "site", "deal", "tariff_kind", "sales_owner", "currency"]

    def filter_active_on(self, queryset, name, value):
        return queryset.filter(
            Q(status=HostingContract.Status.ACTIVE), Q(start_date__lte=value),
            Q(end_date__isnull=True) | Q(end_date__gte=value),
        )  # fmt: skip
