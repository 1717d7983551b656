"""API routes of invoices, credit notes and statements (owner: invoicing)."""

v1: list = []
seed: list = []
