"""Billing calculations in plain Python (no Django): tariffs (owner: invoicing) and SLA (owner: sla)."""
