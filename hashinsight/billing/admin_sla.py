"""Admin of force-majeure windows and SLA certificates (owner: sla)."""
