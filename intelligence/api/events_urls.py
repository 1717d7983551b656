"""API routes of the intelligence layer's events part: curtailment events and the demand-response webhook (owner: events
backend). ``v1`` under /api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
