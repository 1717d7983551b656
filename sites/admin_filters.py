"""Admin list filters on site, zone and hosting client whose choices are the user's own scope.

Django's ``RelatedFieldListFilter`` lists every row of the related table, so a site owner's
"By site" filter named sites hidden from them (rows were scoped, the choices were not). These take
their choices from the same selectors that scope the rows: one query, whatever the list's size."""

from __future__ import annotations

from django.contrib import admin

from sites import selectors


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    selector = None  # callable(user=...) -> QuerySet of the related model, already scoped

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        qs = type(self).selector(user=request.user)
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs]


class SiteListFilter(ScopedRelatedFieldListFilter):
    selector = staticmethod(selectors.site_list)


class ZoneListFilter(ScopedRelatedFieldListFilter):
    selector = staticmethod(selectors.zone_list)


class CustomerListFilter(ScopedRelatedFieldListFilter):
    selector = staticmethod(selectors.customer_list)
