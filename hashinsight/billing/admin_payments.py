"""Admin of payments, addresses and commissions (owner: payments)."""
