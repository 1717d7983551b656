"""The collector against a fake edge API: spool first, replay in order after an outage, nothing lost or
doubled, Retry-After honoured, 401 stops, 400/413 quarantine, health, inventory paging, registration."""

from __future__ import annotations

import asyncio
import gzip
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest

from edge.collector.__main__ import main
from edge.collector.client import Backoff, RequestRefused, ServerClient, parse_retry_after
from edge.collector.runner import EXIT_AUTH, Collector
from edge.collector.sample import MinerSpec
from edge.collector.spool import TELEMETRY, Spool
from edge.tests.collector_fakes import TOKEN, FakeAdapter, FakeEdgeServer, make_config

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


@pytest.fixture
def server():
    with FakeEdgeServer() as srv:
        yield srv


def make_collector(tmp_path, server, *, token=TOKEN, adapter=None, miners=3, **sections):
    config = make_config(tmp_path, server.url, miners=miners, **sections)
    spool = Spool(config.spool_path, max_samples=config.spool_max_samples)
    delays: list[float] = []

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    collector = Collector(
        config,
        client=ServerClient(server.url, token, timeout=5),
        spool=spool,
        adapters={"cgminer": adapter or FakeAdapter()},
        sleep=record_sleep,
        rng=lambda: 0.5,
    )
    collector.delays = delays
    return collector


async def _cycle(collector, when, *, max_retries=None):
    if not collector.miners:
        await collector.load_inventory()
    await collector.poll_once(when)
    return await collector.drain(max_retries=max_retries)


def test_samples_are_spooled_before_the_push_and_deleted_only_after_a_2xx(tmp_path, server):
    server.script["telemetry/ingest"] = [(503, {})]
    collector = make_collector(tmp_path, server)

    drained = asyncio.run(_cycle(collector, T0, max_retries=0))

    assert drained is False
    assert server.stored == {}
    depth = collector.spool.depth()
    assert depth["pending_samples"] == 3  # 3 miners, batches of 2: still all there
    assert depth["pending_batches"] == 2
    assert depth["oldest_spooled_ts"] == "2026-11-26T01:00:00Z"
    assert asyncio.run(collector.drain()) is True
    assert len(server.stored) == 3
    assert collector.spool.depth()["pending_samples"] == 0


def test_an_outage_loses_nothing_doubles_nothing_and_replays_oldest_first(tmp_path, server):
    # down for three pushes, then a batch is stored but its answer is lost, then the server is back
    server.script["telemetry/ingest"] = [(503, {}), (502, {}), (503, {}), "drop"]
    collector = make_collector(tmp_path, server)

    async def scenario():
        results = []
        for minute in range(3):  # three polls while the server is down
            results.append(await _cycle(collector, T0 + timedelta(minutes=minute), max_retries=0))
        results.append(await collector.drain())
        return results

    results = asyncio.run(scenario())

    assert results == [False, False, False, True]
    expected = {(f"M-{m:03d}", f"2026-11-26T01:0{minute}:00Z") for m in (1, 2, 3) for minute in range(3)}
    assert set(server.stored) == expected  # nothing lost
    ingests = [r for r in server.posts("telemetry/ingest") if r["body"]]
    sent = [(s["miner"], s["ts"]) for r in ingests for s in r["body"]["samples"]]
    # the oldest batch (2 samples) went 5 times: three 5xx, one answer lost, one counted as duplicates; the rest once
    assert len(sent) == 9 + 4 * 2
    first_attempt_order = list(dict.fromkeys(sent))
    assert first_attempt_order == sorted(first_attempt_order, key=lambda key: key[1])  # oldest first
    assert collector.spool.depth() == {
        "pending_batches": 0,
        "pending_samples": 0,
        "pending_safety_events": 0,
        "quarantined_batches": 0,
        "oldest_spooled_ts": None,
    }
    meta = collector.spool.all_meta()
    # each sample acknowledged exactly once: the 2 whose answer was lost came back as duplicates
    assert meta["accepted_total"] == 7
    assert meta["duplicates_total"] == 2
    # the push after each poll retried the oldest batch, never a newer one first
    first_batch = [(s["miner"], s["ts"]) for s in ingests[0]["body"]["samples"]]
    assert all([(s["miner"], s["ts"]) for s in r["body"]["samples"]] == first_batch for r in ingests[:5])


def test_retry_after_is_honoured_and_backoff_grows_without_it(tmp_path, server):
    server.script["telemetry/ingest"] = [(429, {"Retry-After": "7"}), (503, {}), (503, {}), (503, {})]
    collector = make_collector(tmp_path, server, miners=1)

    assert asyncio.run(_cycle(collector, T0)) is True

    assert collector.delays[0] >= 7  # the server said 7 s: never sooner
    assert collector.delays[0] <= 7.7  # at most 10 % jitter on top
    # then exponential: attempt n waits between half and all of 2^n s (rng fixed at 0.5 → three quarters)
    assert collector.delays[1:] == [1.5, 3.0, 6.0]
    assert len(server.stored) == 1


def test_backoff_is_capped_and_resets_after_a_success():
    backoff = Backoff(base=1, cap=10, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1
    assert Backoff(rng=lambda: 0.0).next_delay() == 0.5  # never zero: at least half the step


def test_retry_after_as_seconds_or_http_date():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("Thu, 26 Nov 2026 01:00:30 GMT", now=T0.timestamp()) == 30
    assert parse_retry_after("Thu, 26 Nov 2026 00:59:00 GMT", now=T0.timestamp()) == 0
    assert parse_retry_after("999999") == 3600
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_a_refused_token_stops_the_collector_without_retrying(tmp_path, server):
    collector = make_collector(tmp_path, server, token="hie_abc123_revoked")

    drained = asyncio.run(_cycle(collector, T0))

    assert drained is False
    assert collector.auth_refused and "401" in collector.auth_refused
    assert collector.stopping
    assert len(server.posts("telemetry/ingest")) == 1  # asked once, did not spin
    assert collector.delays == []
    assert collector.spool.depth()["pending_samples"] == 3  # kept for after re-enrolment
    assert collector.spool.get_meta("auth_refused_at")


def test_run_exits_with_code_3_when_the_token_is_refused(tmp_path, server):
    server.script["telemetry/ingest"] = [(401, {})]
    collector = make_collector(tmp_path, server)
    collector._sleep = collector._interruptible_sleep  # the real loops

    code = asyncio.run(asyncio.wait_for(collector.run(), timeout=30))

    assert code == EXIT_AUTH
    assert len(server.posts("telemetry/ingest")) == 1
    assert collector.spool.depth()["pending_samples"] == 3


@pytest.mark.parametrize("status", [400, 413])
def test_a_malformed_batch_is_quarantined_and_the_queue_goes_on(tmp_path, server, status, caplog):
    server.script["telemetry/ingest"] = [(status, {})]
    collector = make_collector(tmp_path, server)

    assert asyncio.run(_cycle(collector, T0)) is True

    quarantined = collector.spool.quarantined()
    assert len(quarantined) == 1
    assert quarantined[0]["items"] == 2 and str(status) in quarantined[0]["last_error"]
    assert len(server.stored) == 1  # the second batch went through
    assert collector.delays == []  # not retried
    assert "Quarantined" in caplog.text
    # after a fix, --requeue-quarantined sends it again
    assert collector.spool.requeue_quarantined() == 1
    assert asyncio.run(collector.drain()) is True
    assert len(server.stored) == 3


def test_samples_the_server_rejects_are_counted_and_not_retried(tmp_path, server, caplog):
    collector = make_collector(tmp_path, server, miners=1)
    collector.miners = [MinerSpec("UNKNOWN-1", "127.0.0.1", 4028), *collector.config.miners]

    assert asyncio.run(_cycle(collector, T0)) is True

    assert list(server.stored) == [("M-001", "2026-11-26T01:00:00Z")]
    assert len(server.posts("telemetry/ingest")) == 1
    assert collector.spool.get_meta("rejected_samples_total") == 1
    assert "unknown_miner" in caplog.text and "UNKNOWN-1" in caplog.text


def test_a_full_spool_drops_the_oldest_samples_and_says_so(tmp_path, server, caplog):
    server.script["telemetry/ingest"] = [(503, {})] * 10
    collector = make_collector(tmp_path, server, spool={"max_samples": 4})

    async def outage():
        for minute in range(3):
            await _cycle(collector, T0 + timedelta(minutes=minute), max_retries=0)

    asyncio.run(outage())

    batches = collector.spool.pending(TELEMETRY)
    kept = [(s["miner"], s["ts"]) for b in batches for s in b.payload()["samples"]]
    # whole batches (of 2 and 1) go, oldest first, until at most 4 samples are pending: the newest are kept
    assert kept == [
        ("M-003", "2026-11-26T01:01:00Z"),
        ("M-001", "2026-11-26T01:02:00Z"),
        ("M-002", "2026-11-26T01:02:00Z"),
        ("M-003", "2026-11-26T01:02:00Z"),
    ]
    assert collector.spool.get_meta("dropped_samples") == 5
    assert "spool full" in caplog.text


def test_health_reports_the_spool_and_the_polls(tmp_path, server):
    server.script["telemetry/ingest"] = [(503, {})]
    collector = make_collector(tmp_path, server, adapter=FakeAdapter(offline={"M-002"}))

    async def scenario():
        await _cycle(collector, T0, max_retries=0)
        return await collector.send_health()

    assert asyncio.run(scenario()) is True

    report = server.health[-1]
    assert report["spool_depth"] == 3
    assert report["oldest_spooled_ts"] == "2026-11-26T01:00:00Z"
    assert report["miners_total"] == 3 and report["miners_polled"] == 2
    assert report["poll_errors"] == 1 and report["push_errors"] == 1
    assert report["last_poll_at"] == "2026-11-26T01:00:00Z"
    assert "503" in report["last_error"]
    assert report["version"]
    # counters "since the last report" start again after a delivered report
    assert asyncio.run(collector.send_health()) is True
    assert server.health[-1]["poll_errors"] == 0 and server.health[-1]["push_errors"] == 0


def test_safety_events_are_pushed_once_and_before_telemetry(tmp_path, server):
    adapter = FakeAdapter(errors={"M-001": ["fan_failure"]})
    collector = make_collector(tmp_path, server, adapter=adapter)

    async def scenario():
        await _cycle(collector, T0)
        await _cycle(collector, T0 + timedelta(minutes=1))  # still failing: no new event

    asyncio.run(scenario())

    assert [e["kind"] for e in server.events.values()] == ["fan_failure"]
    event = next(iter(server.events.values()))
    assert event["miner"] == "M-001" and event["ts"] == "2026-11-26T01:00:00Z"
    routes = [r["path"] for r in server.requests if r["method"] == "POST"]
    assert routes.index("events/safety/batch") < routes.index("telemetry/ingest")


def test_inventory_follows_the_next_cursor(tmp_path, server):
    server.inventory_pages = {
        "inventory": {
            "miners": [{"serial": "A", "ip": "10.0.0.1", "model": "s21"}, {"serial": "B", "ip": "10.0.0.2"}],
            "next": "/api/edge/v1/inventory?after=2&limit=2",
        },
        "inventory?after=2&limit=2": {"miners": [{"serial": "C", "ip": ""}], "next": "opaque-cursor"},
        "inventory?cursor=opaque-cursor": {"miners": [{"serial": "D", "ip": "10.0.0.4"}]},
    }
    collector = make_collector(tmp_path, server)
    collector.config = make_config(tmp_path, server.url, inventory="server", adapters={"cgminer_port": 4029})

    assert asyncio.run(collector.load_inventory()) is True

    assert [(m.serial, m.host, m.port, m.model) for m in collector.miners] == [
        ("A", "10.0.0.1", 4029, "s21"),
        ("B", "10.0.0.2", 4029, None),
        ("D", "10.0.0.4", 4029, None),
    ]
    assert collector.unaddressable == ["C"]  # no IP recorded: not polled, reported
    # the server is gone at the next start: the cached inventory is used
    with FakeEdgeServer() as down:
        down.script["inventory"] = [(503, {})]
        restarted = make_collector(tmp_path / "x", down)
        restarted.config = collector.config
        restarted.spool.close()
        collector.spool.close()
        restarted.spool = Spool(collector.config.spool_path)
        assert asyncio.run(restarted.load_inventory()) is False
        assert [m.serial for m in restarted.miners] == ["A", "B", "D"]


def test_inventory_with_a_repeating_cursor_is_refused(server):
    server.inventory_pages = {"inventory": {"miners": [], "next": "/api/edge/v1/inventory"}}
    with pytest.raises(RequestRefused, match="repeats"):
        asyncio.run(ServerClient(server.url, TOKEN).inventory())


def test_requests_are_gzip_json_with_the_bearer_token(tmp_path, server):
    collector = make_collector(tmp_path, server, miners=1)
    asyncio.run(_cycle(collector, T0))
    request = server.posts("telemetry/ingest")[0]
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["body"]["samples"][0] == {
        "miner": "M-001",
        "ts": "2026-11-26T01:00:00Z",
        "status": "hashing",
        "hashrate_ths": 100.0,
        "temp_chip_max_c": 70.0,
        "temp_inlet_c": None,
        "temp_outlet_c": None,
        "fan_rpm": [5000, 5000],
        "power_w": None,
        "accepted_shares": None,
        "rejected_shares": None,
        "errors": [],
    }
    assert TOKEN not in repr(collector.client)


def test_register_writes_credentials_readable_by_the_owner_only(tmp_path, server, capsys, caplog):
    config_path = tmp_path / "site.toml"
    config_path.write_text(
        f'inventory = "static"\n[server]\nurl = "{server.url}"\n[[miners]]\nserial = "A"\nhost = "h"\n'
    )

    assert main(["--config", str(config_path), "--register", " CODE-123 ", "--name", "rack-pi"]) == 0

    creds_path = tmp_path / "credentials.json"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    saved = json.loads(creds_path.read_text())
    assert saved["token"] == TOKEN and saved["hmac_secret"] == "hm4c-s3cret" and saved["device_id"] == 7
    body = server.posts("register")[0]["body"]
    assert body["enrollment_code"] == "CODE-123" and body["name"] == "rack-pi" and body["version"]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text
    assert "hm4c-s3cret" not in out.out + out.err + caplog.text
    # --check now finds them; --status works before any run
    assert main(["--config", str(config_path), "--check"]) == 0
    assert main(["--config", str(config_path), "--status"]) == 0


def test_once_polls_pushes_and_reports_then_status_shows_it(tmp_path, server, capsys):
    config_path = tmp_path / "site.toml"
    config_path.write_text(
        f'inventory = "static"\n[server]\nurl = "{server.url}"\n[spool]\npath = "var/spool.db"\n'
        '[[miners]]\nserial = "M-001"\nhost = "127.0.0.1"\nport = 1\n'
    )
    main(["--config", str(config_path), "--register", "CODE"])

    assert main(["--config", str(config_path), "--once"]) == 0  # port 1: nobody there → an offline sample

    (sample,) = server.stored.values()
    assert sample["status"] == "offline" and sample["errors"] == ["unreachable"] and sample["hashrate_ths"] is None
    assert server.health
    capsys.readouterr()
    assert main(["--config", str(config_path), "--status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending_samples"] == 0 and status["last_push_ok_at"] and status["miners_total"] == 1


def test_without_credentials_the_collector_says_how_to_enroll(tmp_path, capsys):
    config_path = tmp_path / "site.toml"
    config_path.write_text('[server]\nurl = "http://127.0.0.1:9"\n')
    assert main(["--config", str(config_path)]) == 2
    assert "--register CODE" in capsys.readouterr().err


def test_a_second_collector_on_the_same_spool_is_refused(tmp_path):
    first = Spool(tmp_path / "spool.db")
    try:
        with pytest.raises(RuntimeError, match="in use by another collector"):
            Spool(tmp_path / "spool.db")
        reader = Spool.open_readonly(tmp_path / "spool.db")  # --status still reads it
        reader.close()
    finally:
        first.close()


def test_batches_are_stored_as_the_exact_gzip_bytes_sent(tmp_path, server):
    collector = make_collector(tmp_path, server, miners=1)
    server.script["telemetry/ingest"] = [(503, {})]
    asyncio.run(_cycle(collector, T0, max_retries=0))
    (batch,) = collector.spool.pending(TELEMETRY)
    assert json.loads(gzip.decompress(batch.body))["samples"][0]["miner"] == "M-001"
    assert batch.attempts == 1


@pytest.mark.parametrize("status", [404, 405, 415, 302])
def test_a_wrong_url_or_server_version_is_retried_not_quarantined(tmp_path, server, status, caplog):
    # every batch would get the same answer: quarantining them would empty the queue into the quarantine
    server.script["telemetry/ingest"] = [(status, {"Location": "https://elsewhere/"}), (status, {})]
    collector = make_collector(tmp_path, server, miners=1)

    assert asyncio.run(_cycle(collector, T0)) is True

    assert collector.spool.quarantined() == []
    assert len(collector.delays) == 2 and len(server.stored) == 1
    assert "[server] url" in caplog.text
    assert any(r.levelname == "ERROR" and "push failed" in r.getMessage() for r in caplog.records)


def test_register_and_health_are_plain_json_the_spooled_batches_gzip(tmp_path, server):
    collector = make_collector(tmp_path, server, miners=1)
    asyncio.run(_cycle(collector, T0))
    asyncio.run(collector.send_health())
    asyncio.run(ServerClient(server.url).register("CODE", "pi"))
    encodings = {r["path"]: r["headers"].get("Content-Encoding") for r in server.requests}
    assert encodings == {"telemetry/ingest": "gzip", "health": None, "register": None}


def test_dump_inventory_writes_what_the_simulator_reads(tmp_path, server, capsys):
    server.inventory_pages = {
        "inventory": {"miners": [{"serial": "A-1", "model": "antminer-s21-200t", "ip": ""}], "next": "c2"},
        "inventory?cursor=c2": {"miners": [{"serial": "A-2", "model": "whatsminer-m50s-126t", "ip": ""}]},
    }
    config_path = tmp_path / "site.toml"
    config_path.write_text(f'[server]\nurl = "{server.url}"\n')
    main(["--config", str(config_path), "--register", "CODE"])

    assert main(["--config", str(config_path), "--dump-inventory", str(tmp_path / "inv" / "inventory.json")]) == 0

    dumped = json.loads((tmp_path / "inv" / "inventory.json").read_text())
    assert [m["serial"] for m in dumped["miners"]] == ["A-1", "A-2"]
    sim_server = pytest.importorskip("edge.simulator.server")
    from edge.simulator.catalog import load_catalog

    miners = sim_server.build_miners(load_catalog(), count=None, base_port=14028, t0=0.0, inventory=dumped)
    assert [(m.serial, m.port) for m in miners] == [("A-1", 14028), ("A-2", 14029)]
