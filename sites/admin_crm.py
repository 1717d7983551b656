"""Admin of deals and hosting contracts (owner: crm)."""
