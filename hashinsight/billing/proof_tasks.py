"""Daily proof roots: Celery tasks (owner: proofs)."""
