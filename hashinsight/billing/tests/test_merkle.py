"""The Merkle tree and the OP_RETURN script (hashinsight.billing.merkle): small trees checked by hand (the expected
hashes below were computed with ``openssl dgst -sha256`` over the prefixed bytes, not with the module), the RFC 6962
recursive definition, and properties: every leaf's proof verifies, any flipped bit fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashinsight.billing import merkle
from hashinsight.billing.merkle import MalformedProof

A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()
C = hashlib.sha256(b"c").hexdigest()
# openssl: SHA-256(0x00 || sha256("a")), SHA-256(0x01 || leaf(a) || leaf(b)), SHA-256(0x01 || ab || leaf(c))
LEAF_A = "a23bd5b06da9048238a65b3f1d9d0b9e15fae3dde262688e6489aa4c763d1820"
LEAF_B = "a0d9f0a50b35b9f7d7edc57fb64f4771ddef0fefeaca4e6f949a1514db5b136d"
LEAF_C = "6a3fc11b79f836bda340e75c8906e961b8adf4d6a08a2b992e3f38cd6ff38ebf"
NODE_AB = "ad5ca6cddc0b27c6a83e332bf28011769236e6c6a1f786ebf7b5267b37a5bd22"
ROOT_ABC = "cac3d448d4e20a2ad5eae1f500e63c2a7f9217cd14572ba7fd22e26dc1ec2648"

hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


def rfc6962_root(leaves: list[str]) -> str:
    """MTH(D[n]) of RFC 6962 §2.1, written independently: split at the largest power of two below n."""

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1
        while k * 2 < len(items):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth([bytes.fromhex(h) for h in leaves]).hex()


def flip_bit(hex_hash: str, bit: int) -> str:
    raw = bytearray(bytes.fromhex(hex_hash))
    raw[bit // 8] ^= 1 << (bit % 8)
    return raw.hex()


def test_one_leaf_root_is_the_leaf_node_and_its_proof_is_empty():
    assert merkle.merkle_root([A]) == LEAF_A
    assert merkle.inclusion_proof([A], 0) == []
    assert merkle.verify(A, [], LEAF_A)
    # Domain separation: the root of one leaf is not the document hash itself.
    assert not merkle.verify(A, [], A)


def test_two_leaves_by_hand():
    assert merkle.merkle_root([A, B]) == NODE_AB
    assert merkle.inclusion_proof([A, B], 0) == [{"side": "right", "hash": LEAF_B}]
    assert merkle.inclusion_proof([A, B], 1) == [{"side": "left", "hash": LEAF_A}]
    # Order matters: [b, a] is another tree.
    assert merkle.merkle_root([B, A]) != NODE_AB


def test_three_leaves_promote_the_odd_one_instead_of_duplicating_it():
    assert merkle.merkle_root([A, B, C]) == ROOT_ABC
    # c has no sibling on the first level: it is promoted, so its proof has one step only.
    assert merkle.inclusion_proof([A, B, C], 2) == [{"side": "left", "hash": NODE_AB}]
    assert merkle.inclusion_proof([A, B, C], 0) == [
        {"side": "right", "hash": LEAF_B},
        {"side": "right", "hash": LEAF_C},
    ]
    # CVE-2012-2459: with duplication [a, b, c] and [a, b, c, c] share a root; here they do not.
    assert merkle.merkle_root([A, B, C, C]) != ROOT_ABC
    assert (
        merkle.merkle_root([A, B, C, C])
        == merkle.inner_node(
            bytes.fromhex(NODE_AB), merkle.inner_node(bytes.fromhex(LEAF_C), bytes.fromhex(LEAF_C))
        ).hex()
    )


def test_a_document_hash_is_not_an_inner_node():
    # A "document" whose hash is the inner node ab must not verify as a one-leaf tree of root ab, nor as a leaf of
    # the tree with the path of its children.
    assert not merkle.verify(NODE_AB, [{"side": "right", "hash": LEAF_C}], ROOT_ABC)
    assert not merkle.verify(LEAF_A, [{"side": "right", "hash": LEAF_B}], NODE_AB)


def test_path_sides_match_the_proofs():
    assert merkle.path_sides(2, 3) == ["left"]
    assert merkle.path_sides(0, 3) == ["right", "right"]
    assert merkle.path_sides(4, 5) == ["left"]
    assert merkle.path_sides(0, 1) == []
    with pytest.raises(MalformedProof):
        merkle.path_sides(3, 3)


@pytest.mark.parametrize(
    "proof",
    [
        "nope",
        [{"side": "up", "hash": LEAF_B}],
        [{"side": "left", "hash": "xyz"}],
        [{"side": "left", "hash": LEAF_B.upper()}],
        [{"side": "left", "hash": LEAF_B, "extra": 1}],
        [{"side": "left", "hash": LEAF_B}] * 65,
        [None],
    ],
)
def test_malformed_proofs_are_refused_not_guessed(proof):
    with pytest.raises(MalformedProof):
        merkle.verify(A, proof, NODE_AB)


def test_malformed_leaf_and_root():
    with pytest.raises(MalformedProof):
        merkle.verify("ab", [], NODE_AB)
    with pytest.raises(MalformedProof):
        merkle.verify(A, [], "00")
    with pytest.raises(MalformedProof):
        merkle.merkle_root(["not hex"])
    with pytest.raises(IndexError):
        merkle.inclusion_proof([A], 1)


def test_empty_tree_is_sha256_of_nothing():
    assert merkle.merkle_root([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@settings(max_examples=60, deadline=None)
@given(st.lists(hashes, min_size=1, max_size=40))
def test_root_is_rfc6962s_and_every_leafs_proof_verifies(leaves):
    root = merkle.merkle_root(leaves)
    assert root == rfc6962_root(leaves)
    for index, leaf in enumerate(leaves):
        proof = merkle.inclusion_proof(leaves, index)
        assert [s["side"] for s in proof] == merkle.path_sides(index, len(leaves))
        assert merkle.verify(leaf, proof, root)


@settings(max_examples=80, deadline=None)
@given(st.lists(hashes, min_size=2, max_size=24, unique=True), st.data())
def test_any_flipped_bit_fails(leaves, data):
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle.merkle_root(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    bit = data.draw(st.integers(0, 255))
    # in the document hash
    assert not merkle.verify(flip_bit(leaves[index], bit), proof, root)
    # in the root
    assert not merkle.verify(leaves[index], proof, flip_bit(root, bit))
    # in any step of the path
    if proof:
        step = data.draw(st.integers(0, len(proof) - 1))
        changed = [dict(s) for s in proof]
        changed[step]["hash"] = flip_bit(changed[step]["hash"], bit)
        assert not merkle.verify(leaves[index], changed, root)
        # or its side swapped (leaves are distinct, so a node never equals its sibling)
        swapped = [dict(s) for s in proof]
        swapped[step]["side"] = "left" if swapped[step]["side"] == "right" else "right"
        assert not merkle.verify(leaves[index], swapped, root)


@settings(max_examples=40, deadline=None)
@given(st.lists(hashes, min_size=1, max_size=12, unique=True), hashes)
def test_a_document_not_in_the_tree_has_no_proof(leaves, outsider):
    if outsider in leaves:
        return
    root = merkle.merkle_root(leaves)
    for index in range(len(leaves)):
        assert not merkle.verify(outsider, merkle.inclusion_proof(leaves, index), root)


def test_op_return_script_by_hand():
    script = merkle.op_return_script(ROOT_ABC)
    # OP_RETURN (6a), push 36 bytes (24), "HSI1" (48 53 49 31), the root.
    assert script == "6a24" + "48534931" + ROOT_ABC
    assert len(bytes.fromhex(script)) == 38
    assert len(bytes.fromhex(script)) - 2 <= merkle.OP_RETURN_MAX_DATA
    assert merkle.op_return_root(script) == ROOT_ABC
    assert merkle.op_return_asm(script) == "OP_RETURN 48534931" + ROOT_ABC


@pytest.mark.parametrize(
    "script",
    ["zz", "6a20" + ROOT_ABC, "6a24" + "48534932" + ROOT_ABC, "6b24" + "48534931" + ROOT_ABC, "6a2448534931"],
)
def test_op_return_other_scripts_are_refused(script):
    with pytest.raises(MalformedProof):
        merkle.op_return_root(script)
