"""The finance part's Celery tasks, one module per part; Celery's autodiscovery imports this module."""

from hashinsight.billing import invoice_tasks, payment_tasks, proof_tasks, sla_tasks  # noqa: F401
