"""Admin for response profiles and demand-response programmes."""
