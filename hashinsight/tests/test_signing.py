"""Command signing on the server (hashinsight.security.signing) and the cross-check that the edge's own canonical
JSON and signature (edge.signing) give the very same bytes. No database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import signing as edge_signing
from hashinsight.security import signing
from hashinsight.security.canonical import canonical_json as canonical_of_audit

KEY = bytes(range(32))
SIGNED_AT = datetime(2026, 11, 26, 1, 30, 0, 123456, tzinfo=UTC)


def payload(**changes) -> dict:
    base = {
        "command_id": "cmd_01JD0000000000000000000000",
        "site_id": 7,
        "targets": ["SIM-0001", "SIM-0002"],
        "type": "SET_FAN",
        "params": {"percent": 80},
        "priority": 5,
        "expires_at": SIGNED_AT + timedelta(minutes=10),
        "dedupe_key": "fan:site7:80",
        "signed_at": SIGNED_AT,
        "nonce": "n0nce-AAAAAAAAAAAAAAAAAA",
    }
    base.update(changes)
    return base


def test_the_canonical_form_is_the_audit_chains():
    assert signing.canonical_json is canonical_of_audit


def test_canonical_bytes_exactly():
    value = {"b": [1, 2.5, 100.0, None, True], "a": "é€", "t": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    value["d"] = Decimal("1.10")
    assert signing.canonical_json(value) == (
        '{"a":"é€","b":[1,2.5,100,null,true],"d":"1.10","t":"2026-01-02T03:04:05.000000Z"}'.encode()
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), Decimal("NaN"), Decimal("Infinity")])
def test_canonical_json_refuses_non_finite_numbers(bad):
    with pytest.raises(ValueError):
        signing.canonical_json({"x": bad})
    with pytest.raises(ValueError):
        edge_signing.canonical_json({"x": bad})


def test_canonical_json_refuses_naive_datetimes_and_sets():
    for canonical in (signing.canonical_json, edge_signing.canonical_json):
        with pytest.raises(ValueError):
            canonical({"t": datetime(2026, 1, 1)})
        with pytest.raises(TypeError):
            canonical({"s": {1, 2}})
        with pytest.raises(TypeError):
            canonical({1: "int key"})


def test_signature_is_base64_hmac_sha256_of_the_canonical_payload():
    p = payload()
    expected = base64.b64encode(hmac.new(KEY, signing.canonical_json(p), hashlib.sha256).digest()).decode()
    assert signing.sign_command(p, KEY) == expected
    assert signing.verify(p, expected, KEY)


def test_key_order_does_not_matter_but_every_value_does():
    p = payload()
    signature = signing.sign_command(p, KEY)
    assert signing.verify(dict(reversed(list(p.items()))), signature, KEY)
    for name, value in {
        "command_id": "cmd_other",
        "site_id": 8,
        "targets": ["SIM-0001"],
        "type": "HASHING_DISABLE",
        "params": {"percent": 81},
        "priority": 6,
        "expires_at": SIGNED_AT + timedelta(minutes=11),
        "dedupe_key": "other",
        "signed_at": SIGNED_AT + timedelta(microseconds=1),
        "nonce": "n0nce-BBBBBBBBBBBBBBBBBB",
    }.items():
        assert not signing.verify(payload(**{name: value}), signature, KEY), name
    assert not signing.verify(p, signature, bytes(32))
    assert not signing.verify(p, signature[:-2] + "AA", KEY)
    assert not signing.verify(p, None, KEY)


def test_a_payload_must_be_exactly_the_signed_fields():
    p = payload()
    del p["nonce"]
    with pytest.raises(signing.SigningError, match="missing nonce"):
        signing.sign_command(p, KEY)
    with pytest.raises(signing.SigningError, match="unsigned extra fields note"):
        signing.sign_command(payload(note="hi"), KEY)
    assert not signing.verify(payload(note="hi"), signing.sign_command(payload(), KEY), KEY)
    with pytest.raises(signing.SigningError):
        signing.sign_command(payload(), b"")


def test_new_nonce_is_128_random_url_safe_bits():
    nonces = {signing.new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    for nonce in nonces:
        assert len(nonce) == 22 and len(base64.urlsafe_b64decode(nonce + "==")) == 16
        assert set(nonce) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_signed_envelope_is_the_plain_payload_plus_signature():
    envelope = signing.signed_envelope(payload(), KEY)
    assert envelope["expires_at"] == "2026-11-26T01:40:00.123456Z"
    wire = json.loads(json.dumps(envelope))  # what the edge receives
    signature = wire.pop("signature")
    assert signing.verify(wire, signature, KEY)
    assert signature == signing.sign_command(payload(), KEY)


# --- server and edge agree -------------------------------------------------------------------------------------

TRICKY = [
    {"s": "ünïcödé ✓ 中文 \U0001f600", "esc": 'quote " backslash \\ tab \t nl \n nul \x00 del \x7f', "e": ""},
    {"z": {"y": {"x": [{"b": 1, "a": 2}, {}], "B": [], "a": None}}, "A": [[], [[]]]},
    {"floats": [0.1, 1e-7, 100.0, -0.0, 2.5e-308, 1.7976931348623157e308, 1e16, 1e22, 123456789.125, -3.75]},
    {"ints": [0, -1, 2**53 + 1, 2**64, -(2**70), 10**30]},
    {"bools": [True, False, None], "tuple": (1, "two", 3.0)},
    {
        "dt": datetime(2026, 11, 26, 3, 4, 5, tzinfo=timezone(timedelta(hours=8))),
        "d0": datetime(2026, 1, 1, tzinfo=UTC),
    },
    {"dec": [Decimal("1.10"), Decimal("1E+2"), Decimal("-0.000001"), Decimal("12345678901234567890.5")]},
    {"keys": {"é": 1, "e": 2, "E": 3, "\U0001f600": 4, "ｅ": 5, "10": 6, "9": 7, "": 8}},
]


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_server_and_edge_write_the_same_bytes(value):
    server = signing.canonical_json(value)
    assert edge_signing.canonical_json(value) == server
    # after the JSON trip to the edge, the edge still writes the same bytes
    assert edge_signing.canonical_json(json.loads(server)) == server


def test_floats_and_datetimes_on_the_wire():
    value = {"f": [0.1, 1e-7, 100.0], "t": datetime(2026, 11, 26, 3, 4, 5, tzinfo=timezone(timedelta(hours=8)))}
    assert signing.canonical_json(value) == b'{"f":[0.1,1e-07,100],"t":"2026-11-25T19:04:05.000000Z"}'


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_server_and_edge_sign_alike(value):
    p = payload(params=value, targets=["SIM-ü", "SIM-2"], site_id="site-é")
    server_signature = signing.sign_command(p, KEY)
    assert edge_signing.signature_of(p, KEY) == server_signature
    wire = json.loads(json.dumps(signing.signed_envelope(p, KEY), ensure_ascii=False))
    assert wire["signature"] == server_signature
    assert edge_signing.signature_matches(wire, wire["signature"], KEY)


def test_the_edge_reads_the_key_as_the_server_stores_it():
    text = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()  # what credentials.json holds
    assert edge_signing.key_from_secret(text) == KEY


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.datetimes(timezones=st.timezones()).filter(lambda d: d.utcoffset() is not None and d.year >= 1000)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4)
)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_any_value_is_written_alike_by_server_and_edge(value):
    try:
        server = signing.canonical_json(value)
    except (OverflowError, ValueError):  # an aware datetime that leaves the years 1-9999 in UTC
        return
    assert edge_signing.canonical_json(value) == server
    assert edge_signing.canonical_json(json.loads(server)) == server
