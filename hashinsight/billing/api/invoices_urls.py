"""API routes of invoices, credit notes and statements (owner: invoicing). The statement patterns stop at
``statement`` (optionally ``.csv``): ``statement.xlsx`` and ``statement/rows`` belong to the statements part."""

from django.urls import re_path

from hashinsight.billing.api.invoices_views import (
    CreditNoteListView,
    InvoiceBuildView,
    InvoiceDetailView,
    InvoiceIssueView,
    InvoiceListView,
    InvoiceStatementView,
    InvoiceVoidView,
)

PK = r"(?P<pk>[0-9]{1,18})"

v1: list = [
    re_path(r"^invoices/?$", InvoiceListView.as_view(), name="invoice-list"),
    re_path(r"^invoices/build/?$", InvoiceBuildView.as_view(), name="invoice-build"),
    re_path(rf"^invoices/{PK}/?$", InvoiceDetailView.as_view(), name="invoice-detail"),
    re_path(rf"^invoices/{PK}/issue/?$", InvoiceIssueView.as_view(), name="invoice-issue"),
    re_path(rf"^invoices/{PK}/void/?$", InvoiceVoidView.as_view(), name="invoice-void"),
    re_path(rf"^invoices/{PK}/statement(?:\.csv)?/?$", InvoiceStatementView.as_view(), name="invoice-statement"),
    re_path(r"^credit-notes/?$", CreditNoteListView.as_view(), name="credit-note-list"),
]
seed: list = []
