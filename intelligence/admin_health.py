"""Admin for uploaded series and miner health."""
