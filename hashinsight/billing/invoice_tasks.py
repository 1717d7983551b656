"""Invoicing: Celery tasks (owner: invoicing)."""
