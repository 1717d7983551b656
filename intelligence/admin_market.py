"""Admin for the intelligence layer's market models."""
