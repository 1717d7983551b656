"""Receiving-address formats, checked offline (pure Python, no Django, no network).

- **BTC**: Base58Check (P2PKH ``1…``, P2SH ``3…``; testnet/regtest ``m…``/``n…``/``2…``) and native segwit
  (BIP-173 Bech32 for witness version 0, BIP-350 Bech32m for versions 1–16, e.g. Taproot ``bc1p…``). The network
  decides the accepted prefixes (``mainnet``: ``bc`` and versions 0x00/0x05; ``testnet``: ``tb``; ``regtest``:
  ``bcrt``; both test networks use versions 0x6F/0xC4).
- **USDT**: on TRON (TRC-20), the network USDT payments to hosting operators use most: a Base58Check address of
  21 bytes whose first byte is 0x41 (so it starts with ``T``). ERC-20 (``0x…``) addresses are not accepted: their
  EIP-55 checksum needs Keccak-256, which the standard library does not have, and an address we cannot check is an
  address a typo can send money to.

The reasons (``AddressError.message``) are English, marked for the catalogue; callers translate them for display.
No maintained library was added for this: the checks are a few dozen lines written from BIP-173/BIP-350 and the
Base58Check definition, and ``hashinsight/billing/tests/test_payment_addresses.py`` runs the BIPs' own test vectors
against them."""

from __future__ import annotations

import hashlib

# Marks the reasons for translation without needing Django's settings (identity); ``payments`` translates them.
from django.utils.translation import gettext_noop as N_

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}

# network → (bech32 human-readable part, Base58Check version bytes)
BTC_NETWORKS = {
    "mainnet": ("bc", (0x00, 0x05)),
    "testnet": ("tb", (0x6F, 0xC4)),
    "regtest": ("bcrt", (0x6F, 0xC4)),
}
TRON_VERSION = 0x41


class AddressError(ValueError):
    """An address that is not valid; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Bech32 / Bech32m (BIP-173, BIP-350) ---------------------------------------------------------


def _polymod(values) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def bech32_decode(text: str) -> tuple[str, list[int], str]:
    """(hrp, data without checksum, ``"bech32"`` | ``"bech32m"``); raises ``AddressError``."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise AddressError("invalid_character", N_("contains a character outside printable ASCII"))
    if text.lower() != text and text.upper() != text:
        raise AddressError("mixed_case", N_("mixes upper and lower case"))
    if len(text) > 90:
        raise AddressError("too_long", N_("is longer than 90 characters"))
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1:
        raise AddressError("no_hrp", N_("has no human-readable part"))
    if pos + 7 > len(text):
        raise AddressError("checksum_too_short", N_("has a checksum shorter than 6 characters"))
    if any(c not in BECH32_CHARSET for c in text[pos + 1 :]):
        raise AddressError("invalid_character", N_("has a character outside the Bech32 alphabet"))
    hrp = text[:pos]
    data = [BECH32_CHARSET.find(c) for c in text[pos + 1 :]]
    const = _polymod(_hrp_expand(hrp) + data)
    if const == BECH32_CONST:
        encoding = "bech32"
    elif const == BECH32M_CONST:
        encoding = "bech32m"
    else:
        raise AddressError("bad_checksum", N_("has a wrong checksum"))
    return hrp, data[:-6], encoding


def _convertbits(data, frombits: int, tobits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    max_acc = (1 << (frombits + tobits - 1)) - 1
    for value in data:
        if value < 0 or (value >> frombits):
            return None
        acc = ((acc << frombits) | value) & max_acc
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return out


def decode_segwit(hrp: str, address: str) -> tuple[int, bytes]:
    """(witness version, witness program) of a native segwit address for ``hrp``; raises ``AddressError``."""
    found_hrp, data, encoding = bech32_decode(address)
    if found_hrp != hrp:
        raise AddressError("wrong_network", N_("is not an address of this network"))
    if not data:
        raise AddressError("empty_data", N_("has no witness program"))
    version = data[0]
    if version > 16:
        raise AddressError("invalid_witness_version", N_("has a witness version above 16"))
    program = _convertbits(data[1:], 5, 8, False)
    if program is None or not 2 <= len(program) <= 40:
        raise AddressError("invalid_program", N_("has a witness program of invalid length or padding"))
    if version == 0 and len(program) not in (20, 32):
        raise AddressError("invalid_program", N_("has a version-0 program that is neither 20 nor 32 bytes"))
    if (version == 0) != (encoding == "bech32"):
        raise AddressError("bad_checksum", N_("uses the wrong checksum for its witness version (BIP-350)"))
    return version, bytes(program)


# --- Base58Check ----------------------------------------------------------------------------------


def b58decode(text: str) -> bytes:
    number = 0
    for c in text:
        if c not in _B58_INDEX:
            raise AddressError("invalid_character", N_("has a character outside the Base58 alphabet"))
        number = number * 58 + _B58_INDEX[c]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + body


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = BASE58_ALPHABET[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


def b58check_decode(text: str) -> bytes:
    """The payload (version byte included) of a Base58Check string; raises ``AddressError``."""
    raw = b58decode(text)
    if len(raw) < 5:
        raise AddressError("too_short", N_("is too short"))
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise AddressError("bad_checksum", N_("has a wrong checksum"))
    return payload


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])


# --- The checks the pool uses -------------------------------------------------------------------


def validate_btc(address: str, network: str = "mainnet") -> str:
    """The address as stored (segwit lower-cased, Base58 as given); raises ``AddressError``."""
    if network not in BTC_NETWORKS:
        raise ValueError(f"unknown BTC network {network!r}")
    hrp, versions = BTC_NETWORKS[network]
    address = (address or "").strip()
    if not address:
        raise AddressError("empty", N_("is empty"))
    if address.lower().startswith(hrp + "1"):
        decode_segwit(hrp, address)
        return address.lower()
    if len(address) > 40 or len(address) < 25:
        raise AddressError("invalid_format", N_("is neither a Base58 nor a segwit address of this network"))
    payload = b58check_decode(address)
    if len(payload) != 21 or payload[0] not in versions:
        raise AddressError("wrong_network", N_("is not a P2PKH or P2SH address of this network"))
    return address


def validate_usdt(address: str) -> str:
    """A TRC-20 (TRON) address, ``T…``; raises ``AddressError``."""
    address = (address or "").strip()
    if not address:
        raise AddressError("empty", N_("is empty"))
    if address.startswith("0x"):
        raise AddressError("unsupported_network", N_("is an ERC-20 address; USDT is received on TRON (TRC-20, T…)"))
    if len(address) != 34 or not address.startswith("T"):
        raise AddressError("invalid_format", N_("is not a TRON address (34 characters starting with T)"))
    payload = b58check_decode(address)
    if len(payload) != 21 or payload[0] != TRON_VERSION:
        raise AddressError("invalid_format", N_("is not a TRON address (version byte 0x41)"))
    return address


def validate(network: str, address: str, *, btc_network: str = "mainnet") -> str:
    """``validate_btc`` or ``validate_usdt`` by pool network (``btc`` | ``usdt``)."""
    if network == "btc":
        return validate_btc(address, btc_network)
    if network == "usdt":
        return validate_usdt(address)
    raise AddressError("unknown_network", N_("network is btc or usdt"))
