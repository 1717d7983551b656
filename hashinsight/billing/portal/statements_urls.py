"""Portal routes of client finance: the finance home, invoices, statements and their downloads, and the operators'
buttons on an invoice (owner: statements; namespace ``portal``)."""

from django.urls import path

from hashinsight.portal.views import finance
from hashinsight.portal.views import invoices as pages

urlpatterns: list = [
    path("finance/", finance.finance_home, name="finance-home"),
    path("finance/invoices/", pages.invoice_list, name="invoice-list"),
    path("finance/invoices/build/", pages.invoice_build, name="invoice-build"),
    path("finance/invoices/<int:pk>/", pages.invoice_detail, name="invoice-detail"),
    path("finance/invoices/<int:pk>/statement.csv", pages.invoice_statement_csv, name="invoice-statement-csv"),
    path("finance/invoices/<int:pk>/statement.xlsx", pages.invoice_statement_xlsx, name="invoice-statement-xlsx"),
    path(
        "finance/invoices/<int:pk>/commands/<int:command_id>/",
        pages.invoice_statement_command,
        name="invoice-statement-command",
    ),
    path("finance/invoices/<int:pk>/rebuild/", pages.invoice_rebuild, name="invoice-rebuild"),
    path("finance/invoices/<int:pk>/issue/", pages.invoice_issue, name="invoice-issue"),
    path("finance/invoices/<int:pk>/void/", pages.invoice_void, name="invoice-void"),
    path("finance/invoices/<int:pk>/credit-note/", pages.invoice_credit_note, name="invoice-credit-note"),
    path("finance/invoices/<int:pk>/payment/", pages.invoice_payment, name="invoice-payment"),
    path("finance/invoices/<int:pk>/hold/", pages.invoice_hold, name="invoice-hold"),
]
