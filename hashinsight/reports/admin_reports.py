"""Admin of report jobs, files and schedules (owner: reports)."""
