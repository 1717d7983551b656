"""Payments, chain confirmations and overdue reminders: Celery tasks (owner: payments)."""
