"""Merkle trees over SHA-256 document hashes, and the Bitcoin OP_RETURN script that anchors a root. Pure Python, no
Django: ``manage.py verify_statement`` and a client's own script check a proof with nothing else.

The tree (RFC 6962's Merkle Tree Hash, section 2.1, over 32-byte document hashes):

    leaf node  = SHA-256(0x00 || document_sha256)          (32 raw bytes, not the hex text)
    inner node = SHA-256(0x01 || left || right)

The two prefixes separate the domains: an inner node can never be passed off as a leaf (a second preimage of a
64-byte "document" made of two child hashes), whatever the tree's shape.

Built level by level from the leaves in order: pairs are hashed left to right, and a level with an odd count
**promotes** its last node to the next level unchanged. It is never paired with a copy of itself (Bitcoin's block
tree duplicates it, which is why the lists [a, b, c] and [a, b, c, c] have the same root there, CVE-2012-2459). With
promotion every list of leaves has its own root, and the shape is exactly RFC 6962's recursive split at the largest
power of two below ``n`` (the tests check both definitions agree). The empty tree's root is SHA-256 of nothing
(RFC 6962); a day with a tree always has at least one leaf.

An inclusion proof is the path from a leaf to the root: a list of ``{"side": "left"|"right", "hash": hex}``, from the
leaf upwards, where ``side`` says on which side the sibling sits. A promoted node has no sibling at that level, so it
adds no step. ``verify`` recomputes the root from the document hash and the path and compares.

The OP_RETURN output script (``op_return_script``) is ``6a 24 "HSI1" <root, 32 bytes>``: OP_RETURN, one direct push
of 36 bytes (a 4-byte tag naming the format, version 1, then the raw root). 38 bytes in all, within Bitcoin's
standard 80 bytes of OP_RETURN data; a broadcast transaction carries it as a zero-value output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
LEFT, RIGHT = "left", "right"
MAX_DEPTH = 64  # a path longer than this cannot come from any tree we build (2**64 leaves)

OP_RETURN = 0x6A
OP_RETURN_TAG = b"HSI1"  # HashInsight, format 1
OP_RETURN_MAX_DATA = 80  # Bitcoin Core's default -datacarriersize (data bytes after OP_RETURN)

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


class MalformedProof(ValueError):
    """The proof, a hash or a script is not in the documented form (as opposed to: well formed, but wrong)."""


def _raw(hex_hash: str, what: str = "hash") -> bytes:
    if not isinstance(hex_hash, str) or not _HEX64.match(hex_hash):
        raise MalformedProof(f"{what} must be 64 lowercase hexadecimal characters")
    return bytes.fromhex(hex_hash)


def is_sha256_hex(value) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def leaf_node(document_sha256: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + document_sha256).digest()


def inner_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _levels(leaves: Sequence[str]) -> list[list[bytes]]:
    """Every level of the tree, the leaf nodes first and the root's level (one node) last."""
    level = [leaf_node(_raw(h, "leaf hash")) for h in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = [inner_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # promoted, not duplicated
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[str]) -> str:
    """The root (hex) of the tree over ``leaves`` (document SHA-256s in hex, in tree order)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _levels(leaves)[-1][0].hex()


def inclusion_proof(leaves: Sequence[str], index: int) -> list[dict]:
    """The path of ``leaves[index]`` to the root: ``[{"side", "hash"}, ...]`` from the leaf upwards."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    proof = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append({"side": LEFT if sibling < index else RIGHT, "hash": level[sibling].hex()})
        index //= 2  # a promoted node (no sibling) keeps its place at the next level
    return proof


def path_sides(index: int, size: int) -> list[str]:
    """The sides a proof of leaf ``index`` in a tree of ``size`` leaves has: what a proof claiming that position
    must look like (so a proof cannot claim one position and prove another)."""
    if not 0 <= index < size:
        raise MalformedProof(f"index {index} is not in a tree of {size} leaves")
    sides = []
    while size > 1:
        sibling = index ^ 1
        if sibling < size:
            sides.append(LEFT if sibling < index else RIGHT)
        index, size = index // 2, (size + 1) // 2
    return sides


def root_from_proof(document_sha256: str, proof) -> str:
    """The root (hex) that ``proof`` leads to from the document hash; ``MalformedProof`` if it is not a proof."""
    if not isinstance(proof, list) or len(proof) > MAX_DEPTH:
        raise MalformedProof(f"the proof must be a list of at most {MAX_DEPTH} steps")
    node = leaf_node(_raw(document_sha256, "leaf hash"))
    for n, step in enumerate(proof):
        if not isinstance(step, dict) or set(step) != {"side", "hash"}:
            raise MalformedProof(f"step {n} must be an object with exactly 'side' and 'hash'")
        sibling = _raw(step["hash"], f"step {n}'s hash")
        if step["side"] == LEFT:
            node = inner_node(sibling, node)
        elif step["side"] == RIGHT:
            node = inner_node(node, sibling)
        else:
            raise MalformedProof(f"step {n}'s side must be 'left' or 'right'")
    return node.hex()


def verify(document_sha256: str, proof, root: str) -> bool:
    """Does ``proof`` lead from the document hash to ``root``? ``MalformedProof`` if any part is not well formed."""
    _raw(root, "root")
    return root_from_proof(document_sha256, proof) == root


# ---------------------------------------------------------------------------------------------------------------------
# OP_RETURN


def op_return_script(root: str) -> str:
    """The standard OP_RETURN output script (hex) anchoring ``root``: ``6a 24 48534931 <root>``."""
    data = OP_RETURN_TAG + _raw(root, "root")
    assert len(data) <= 75 and len(data) <= OP_RETURN_MAX_DATA  # one direct push (opcodes 0x01-0x4b)
    return bytes([OP_RETURN, len(data)]).hex() + data.hex()


def op_return_root(script_hex: str) -> str:
    """The root anchored by an OP_RETURN script in our format; ``MalformedProof`` for any other script."""
    try:
        script = bytes.fromhex(script_hex)
    except (TypeError, ValueError) as exc:
        raise MalformedProof("the OP_RETURN script is not hexadecimal") from exc
    size = len(OP_RETURN_TAG) + 32
    if len(script) != 2 + size or script[0] != OP_RETURN or script[1] != size:
        raise MalformedProof("the OP_RETURN script is not OP_RETURN with one 36-byte push")
    if script[2:6] != OP_RETURN_TAG:
        raise MalformedProof("the OP_RETURN data does not start with the HSI1 tag")
    return script[6:].hex()


def op_return_asm(script_hex: str) -> str:
    """The script as Bitcoin Core's ``decodescript`` writes it: ``OP_RETURN <data hex>``."""
    op_return_root(script_hex)
    return "OP_RETURN " + script_hex[4:]
