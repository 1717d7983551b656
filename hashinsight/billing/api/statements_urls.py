"""API routes of statement exports and client finance views (owner: statements). The invoicing part owns the
invoice list, detail and the canonical CSV (``invoices_urls``); these paths are distinct from theirs."""

from django.urls import re_path

from hashinsight.billing.api.statements_views import StatementCommandView, StatementRowsView, StatementXlsxView

v1: list = [
    re_path(r"^invoices/(?P<pk>[0-9]+)/statement\.xlsx$", StatementXlsxView.as_view(), name="invoice-statement-xlsx"),
    re_path(r"^invoices/(?P<pk>[0-9]+)/statement/rows/?$", StatementRowsView.as_view(), name="invoice-statement-rows"),
    re_path(
        r"^invoices/(?P<pk>[0-9]+)/statement/commands/(?P<command_id>[0-9]+)/?$",
        StatementCommandView.as_view(),
        name="invoice-statement-command",
    ),
]
seed: list = []
