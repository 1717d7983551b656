"""edge/cgminer.py: request/reply framing and the asyncio client, against small fake servers (no sleeping)."""

from __future__ import annotations

import asyncio
import json

import pytest

from edge import cgminer


async def _serve(reply: bytes | None, *, received: list | None = None):
    """A one-shot server that answers ``reply`` (None: never answers, keeps the connection open)."""

    async def handle(reader, writer):
        data = await reader.read(4096)
        if received is not None:
            received.append(data)
        if reply is None:
            await reader.read()  # until the client gives up
        else:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _run(reply: bytes | None, command: str = "summary", *, timeout: float = 2.0, parameter=None, received=None):
    async def go():
        server, port = await _serve(reply, received=received)
        try:
            return await cgminer.query("127.0.0.1", port, command, timeout, parameter=parameter)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(go())


def test_query_sends_the_command_and_decodes_the_nul_terminated_reply():
    received: list[bytes] = []
    body = {"STATUS": [cgminer.status(11, "Summary")], "SUMMARY": [{"MHS av": 1.0}], "id": 1}
    reply = _run(cgminer.encode_reply(body), "summary", parameter="0", received=received)
    assert reply["SUMMARY"] == [{"MHS av": 1.0}] and not cgminer.is_error(reply)
    assert json.loads(received[0]) == {"command": "summary", "parameter": "0"}
    assert cgminer.section(reply, "SUMMARY") == [{"MHS av": 1.0}] and cgminer.section(reply, "STATS") == []


def test_reply_without_nul_ends_at_eof_and_bmminer_joined_replies_are_repaired():
    assert _run(b'{"STATUS":[{"STATUS":"S"}],"id":1}')["id"] == 1
    # firmware slips: bmminer forgets the comma between list items, btminer leaves a trailing one
    slipped = _run(b'{"STATS":[{"Type":"Antminer S9"}{"fan1":3600,}],"id":1}\x00')
    assert slipped["STATS"] == [{"Type": "Antminer S9"}, {"fan1": 3600}]


def test_error_status_is_returned_and_raise_for_status_raises():
    reply = _run(cgminer.encode_reply({"STATUS": [cgminer.status(14, "Invalid command", kind="E")], "id": 1}))
    assert cgminer.is_error(reply)
    with pytest.raises(cgminer.CGMinerCommandError) as caught:
        cgminer.raise_for_status(reply)
    assert caught.value.code == 14 and caught.value.msg == "Invalid command"
    joined = {"summary": [{"STATUS": [{"STATUS": "S"}]}], "stats": [{"STATUS": [{"STATUS": "E", "Code": 45}]}]}
    assert cgminer.is_error(joined)
    assert not cgminer.is_error({"summary": [{"STATUS": [{"STATUS": "S"}]}], "id": 1})


@pytest.mark.parametrize("reply", [b"not json\x00", b"[1, 2]\x00", b"\x00", b"   "])
def test_unreadable_replies_raise_protocol_errors(reply):
    with pytest.raises(cgminer.CGMinerProtocolError):
        _run(reply)


def test_no_answer_is_unavailable():
    with pytest.raises(cgminer.CGMinerUnavailable):
        _run(b"")  # closed without a reply
    with pytest.raises(cgminer.CGMinerTimeout):
        _run(None, timeout=0.2)

    async def refused():
        server, port = await _serve(b"")
        server.close()
        await server.wait_closed()
        await cgminer.query("127.0.0.1", port, "summary", 2)

    with pytest.raises(cgminer.CGMinerUnavailable):
        asyncio.run(refused())


def test_decode_request_forms_and_errors():
    assert cgminer.decode_request(b'{"command": "stats"}\x00') == ("stats", None)
    assert cgminer.decode_request(b'{"command": " pools ", "parameter": 3}') == ("pools", "3")
    assert cgminer.decode_request(b"summary|0\n") == ("summary", "0")
    assert cgminer.decode_request(b"version") == ("version", None)
    for bad in (b"", b"{", b'{"command": ""}', b'{"command": null}', b"|x", b"\xff"):
        with pytest.raises(ValueError):
            cgminer.decode_request(bad)
    assert cgminer.encode_request("ascdisable", "1") == b'{"command":"ascdisable","parameter":"1"}'
