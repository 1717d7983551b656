"""Pure algorithms: no Django imports."""
