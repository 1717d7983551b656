"""Admin for the intelligence layer's plans models."""
