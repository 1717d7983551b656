"""API routes of SLA: force-majeure windows, downtime and certificates (owner: sla)."""

v1: list = []
seed: list = []
