"""The finance admin, one module per part."""

from hashinsight.billing import admin_invoices, admin_payments, admin_proofs, admin_sla  # noqa: F401
