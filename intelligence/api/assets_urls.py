"""API routes of the intelligence layer's assets part: per-asset power and energy forecasts (owner: assets/health).
``v1`` under /api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
