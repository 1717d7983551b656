"""API routes of CRM: deals and hosting contracts (owner: crm)."""

v1: list = []
seed: list = []
