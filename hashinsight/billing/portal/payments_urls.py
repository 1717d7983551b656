"""Portal routes of payments and commissions (owner: payments; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import payments as pages

urlpatterns: list = [
    path("payments/", pages.payment_list, name="payment-list"),
    path("payments/record/", pages.payment_record, name="payment-record"),
    path("payments/<int:pk>/confirm/", pages.payment_confirm, name="payment-confirm"),
    path("payments/<int:pk>/reject/", pages.payment_reject, name="payment-reject"),
    path("payments/addresses/", pages.address_list, name="payment-address-list"),
    path("payments/commissions/", pages.commission_list, name="payment-commission-list"),
    path("payments/holds/", pages.hold_list, name="payment-hold-list"),
    path("payments/holds/propose/", pages.hold_propose, name="payment-hold-propose"),
    path("payments/holds/release/", pages.hold_release, name="payment-hold-release"),
]
