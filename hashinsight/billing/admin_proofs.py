"""Admin of proof roots and leaves (owner: proofs)."""
