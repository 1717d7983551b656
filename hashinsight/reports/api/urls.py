"""API routes of reports: jobs, files and schedules (owner: reports)."""

v1: list = []
seed: list = []
