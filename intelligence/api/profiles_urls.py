"""API routes of the intelligence layer's profiles part: response profiles and demand-response programmes (owner:
profiles). ``v1`` under /api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
