"""Admin for curtailment events and their miners."""
