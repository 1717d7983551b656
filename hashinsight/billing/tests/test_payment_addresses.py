"""Address checks against the BIPs' own test vectors (BIP-173 / BIP-350) and Base58Check (owner: payments).
Pure Python: no database."""

from __future__ import annotations

import pytest

from hashinsight.billing.addresses import (
    AddressError,
    b58check_decode,
    b58check_encode,
    bech32_decode,
    decode_segwit,
    validate_btc,
    validate_usdt,
)

# BIP-350: valid Bech32m strings; none of them is valid Bech32 (and BIP-173's Bech32 ones are not Bech32m).
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
INVALID_BECH32M = [
    "\x201xj0phk", "\x7f1g6xzxy", "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m", "1qyrz8wqd2c9m", "y1b0jsk6g", "lt1igcx5c0", "in1muywd", "mm1crxm3i", "au1s5cgom", "M1VUXWEZ",
    "16plkw9", "1p2gdwpf",
]  # fmt: skip

# BIP-350: valid segwit addresses → scriptPubKey (version opcode, push length, program).
VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
]  # fmt: skip
INVALID_SEGWIT = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # invalid human-readable part
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # Bech32 instead of Bech32m
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",  # Bech32 instead of Bech32m
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",  # Bech32 instead of Bech32m
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  # Bech32m instead of Bech32
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",  # Bech32m instead of Bech32
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # invalid character in checksum
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # invalid witness version
    "bc1pw5dgrnzv",  # program length 1
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  # program length 41
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # version-0 program of 16 bytes
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # zero padding of more than 4 bits
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
    "bc1gmk9yu",  # empty data section
]


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_valid_bech32m_strings(text):
    assert bech32_decode(text)[2] == "bech32m"


@pytest.mark.parametrize("text", VALID_BECH32)
def test_valid_bech32_strings(text):
    assert bech32_decode(text)[2] == "bech32"


@pytest.mark.parametrize("text", INVALID_BECH32M)
def test_invalid_bech32m_strings(text):
    with pytest.raises(AddressError):
        bech32_decode(text)


def _script(version: int, program: bytes) -> str:
    return bytes([version + 0x50 if version else 0, len(program)]).hex() + program.hex()


@pytest.mark.parametrize(("address", "script"), VALID_SEGWIT)
def test_valid_segwit_addresses_decode_to_their_script(address, script):
    hrp = "tb" if address.lower().startswith("tb1") else "bc"
    assert _script(*decode_segwit(hrp, address)) == script
    assert validate_btc(address, "testnet" if hrp == "tb" else "mainnet") == address.lower()


@pytest.mark.parametrize("address", INVALID_SEGWIT)
def test_invalid_segwit_addresses(address):
    for hrp in ("bc", "tb"):
        with pytest.raises(AddressError):
            decode_segwit(hrp, address)
    with pytest.raises(AddressError):
        validate_btc(address, "testnet" if address.lower().startswith("tb") else "mainnet")


def test_base58check_p2pkh_and_p2sh_on_their_network_only():
    assert validate_btc("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2") == "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    assert validate_btc("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy") == "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
    with pytest.raises(AddressError) as exc:
        validate_btc("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3")  # last character changed
    assert exc.value.code == "bad_checksum"
    with pytest.raises(AddressError) as exc:
        validate_btc("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "testnet")
    assert exc.value.code == "wrong_network"
    testnet = b58check_encode(bytes([0x6F]) + bytes(range(20)))
    assert testnet.startswith(("m", "n")) and validate_btc(testnet, "testnet") == testnet
    with pytest.raises(AddressError):
        validate_btc("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "testnet")
    with pytest.raises(AddressError) as exc:
        validate_btc("0OIl" * 8)  # characters outside the Base58 alphabet
    assert exc.value.code == "invalid_character"


def test_base58check_round_trip_keeps_leading_zeros():
    payload = b"\x00\x00" + bytes(range(19))
    assert b58check_decode(b58check_encode(payload)) == payload
    assert b58check_encode(payload).startswith("11")


def test_tron_addresses():
    assert validate_usdt("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t") == "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    for bad, code in [
        ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "bad_checksum"),
        ("0xdAC17F958D2ee523a2206206994597C13D831ec7", "unsupported_network"),
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "invalid_format"),
        ("", "empty"),
    ]:
        with pytest.raises(AddressError) as exc:
            validate_usdt(bad)
        assert exc.value.code == code, bad
    # A Base58Check string of 34 characters starting with T but another version byte is refused.
    other = b58check_encode(bytes([0x42]) + bytes(20))
    if other.startswith("T") and len(other) == 34:
        with pytest.raises(AddressError):
            validate_usdt(other)
