"""API routes of the intelligence layer's responder part: the real-time responder (owner: responder). ``v1`` under
/api/v1/, ``seed`` under /api/."""

v1: list = []
seed: list = []
