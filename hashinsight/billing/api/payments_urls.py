"""API routes of payments, payment addresses, commissions and holds (owner: payments)."""

v1: list = []
seed: list = []
