"""Admin for the intelligence layer's forecast models."""
