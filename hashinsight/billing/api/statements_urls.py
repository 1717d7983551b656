"""API routes of statement exports and client finance views (owner: statements)."""

v1: list = []
seed: list = []
