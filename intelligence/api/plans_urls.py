"""API routes of the intelligence layer's plans part: ``v1`` under /api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
