"""Portal routes of proofs: verify page, roots (owner: proofs; namespace ``portal``)."""

urlpatterns: list = []
