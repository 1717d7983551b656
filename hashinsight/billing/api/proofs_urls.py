"""API routes of proofs: daily Merkle roots, inclusion proofs, verification (owner: proofs)."""

v1: list = []
seed: list = []
