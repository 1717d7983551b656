"""Monthly SLA certificates (owner: sla): signed JSON and ERC-721 metadata."""

from __future__ import annotations


def issue_certificate(invoice):
    """Called inside the issuing transaction of a month's invoice: the client's SLA certificate for that month (and
    its proof leaf). Returns the SlaCertificate, or None."""
    return None
