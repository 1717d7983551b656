"""API routes of the intelligence layer's health part: miner health predictions (owner: assets/health). ``v1`` under
/api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
