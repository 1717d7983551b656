"""Models arrive with the telemetry issue; the app exists now so migrations start from the foundation."""
