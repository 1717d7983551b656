"""API routes of payments, payment addresses, commissions and holds (owner: payments)."""

from django.urls import re_path

from hashinsight.billing.api import payments_views as views

v1: list = [
    re_path(r"^payments/?$", views.PaymentListView.as_view(), name="payment-list"),
    re_path(r"^payments/(?P<pk>[0-9]+)/?$", views.PaymentDetailView.as_view(), name="payment-detail"),
    re_path(r"^payments/(?P<pk>[0-9]+)/confirm/?$", views.PaymentConfirmView.as_view(), name="payment-confirm"),
    re_path(r"^payments/(?P<pk>[0-9]+)/reject/?$", views.PaymentRejectView.as_view(), name="payment-reject"),
    re_path(r"^payment-addresses/?$", views.AddressListView.as_view(), name="payment-address-list"),
    re_path(r"^commissions/?$", views.CommissionListView.as_view(), name="commission-list"),
    re_path(r"^customers/(?P<pk>[0-9]+)/hold/?$", views.CustomerHoldView.as_view(), name="customer-hold"),
]
seed: list = []
