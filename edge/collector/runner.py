"""The collector's loops: inventory, poll → spool, spool → server, health.

Polling and pushing are independent: a poll writes its samples to the spool (in batches of ``batch_size``)
and wakes the pusher; the pusher sends the oldest pending batch (safety events first), deletes it on 2xx and
moves on. While the server is unreachable the pusher backs off (exponential with jitter, honouring
Retry-After) and the polls keep filling the spool; afterwards the backlog goes out oldest first. A 401
stops the whole collector (exit code 3) instead of retrying a revoked token; a 400/413 quarantines that batch
and the queue goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from edge import cgminer
from edge.collector import VERSION
from edge.collector.adapters import Adapter, build_adapter
from edge.collector.client import AuthRefused, Backoff, Misconfigured, RequestRefused, Retryable, ServerClient
from edge.collector.commands import FAILED as COMMAND_FAILED
from edge.collector.commands import REPLAYED, CommandVerifier, NonceStore, Refusal, execute
from edge.collector.config import Config
from edge.collector.credentials import Credentials, CredentialsError, load_credentials
from edge.collector.curtail import ACKED, REFUSED, REFUSED_ACK_STATUSES, RestoreStore, ack_delay, run_restore
from edge.collector.safety import detect
from edge.collector.sample import UNREACHABLE, MinerSpec, Sample, utc_iso
from edge.collector.spool import KINDS, SAFETY, TELEMETRY, Spool

log = logging.getLogger("edge.collector")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_AUTH = 0, 1, 2, 3
COMMAND_WAIT_S = 25.0  # the long poll for commands (the server's maximum)
RESTORE_TICK_S = 1.0  # how often the CURTAIL restores due are looked for
POLL_FAILED = "poll_failed"  # the adapter itself raised (a bug or an unexpected answer): logged, sample offline


def _now_iso() -> str:
    return utc_iso(datetime.now(UTC))


def miners_from_inventory(
    config: Config, items: list[dict], sim_ports: dict[str, int] | None = None
) -> tuple[list[MinerSpec], list[str]]:
    """MinerSpecs for the server's inventory, and the serials that cannot be polled (no address).

    - ``[[miners]]`` entries in the config override an inventory miner of the same serial (host, port, adapter).
    - With ``[adapters] simulator_base_port`` every miner is on ``simulator_host``; its port is the one the
      simulator was found serving it on (``sim_ports``, see Collector.discover_simulator), else base + the
      item's ``sim_index`` when it has one. A miner found nowhere is not polled (listed as unaddressable).
    - Otherwise the host is the item's ``ip`` and the port its ``port`` field or ``cgminer_port``."""
    overrides = {m.serial: m for m in config.miners}
    specs: list[MinerSpec] = []
    unaddressable: list[str] = []
    for item in items:
        serial = item.get("serial")
        if not isinstance(serial, str) or not serial:
            continue
        model = item.get("model_code") or item.get("model")
        nominal_ths = item.get("hashrate_ths", item.get("nominal_hashrate_ths"))
        nominal_w = item.get("power_w", item.get("nominal_power_w"))
        if serial in overrides:
            o = overrides[serial]
            specs.append(MinerSpec(serial, o.host, o.port, o.adapter, o.model or model, nominal_ths, nominal_w))
            continue
        if config.simulator_base_port is not None:
            host = config.simulator_host
            index = item.get("sim_index")
            if sim_ports and serial in sim_ports:
                port = sim_ports[serial]
            elif isinstance(index, int) and not isinstance(index, bool):
                port = config.simulator_base_port + index
            else:
                unaddressable.append(serial)
                continue
        else:
            host = item.get("ip") or item.get("host")
            port = item.get("port") if isinstance(item.get("port"), int) else config.cgminer_port
            if not host:
                unaddressable.append(serial)
                continue
        specs.append(MinerSpec(serial, str(host), int(port), config.default_adapter, model, nominal_ths, nominal_w))
    return specs, unaddressable


class Collector:
    def __init__(
        self,
        config: Config,
        *,
        client: ServerClient,
        spool: Spool,
        adapters: dict[str, Adapter] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Callable[[], float] = random.random,
        credentials: Credentials | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.credentials = credentials
        self.command_wait_s = COMMAND_WAIT_S
        self.command_backoff = Backoff(cap=config.max_backoff_s, rng=rng)
        self.commands_handled = 0
        self.client = client
        self.spool = spool
        self.restores = RestoreStore(spool.db)  # CURTAIL restores, in the spool's SQLite next to the nonces
        self._rng = rng
        self._adapters: dict[str, Adapter] = dict(adapters or {})
        self._sleep = sleep or self._interruptible_sleep
        self.backoff = Backoff(cap=config.max_backoff_s, rng=rng)
        self.miners: list[MinerSpec] = []
        self.unaddressable: list[str] = []
        self.inventory_at: float | None = None
        self.inventory_items: list[dict] = []
        self.sim_ports: dict[str, int] = {}
        self.discovered_at: float | None = None
        self.auth_refused: str | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._previously_online: set[str] | None = None
        self.started = time.monotonic()
        self.poll_errors_total = 0
        self.poll_errors_unreported = 0
        self.push_errors_unreported = 0
        self.last_cycle: dict = {}

    # --- plumbing ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _interruptible_sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(seconds, 0))

    def adapter(self, name: str) -> Adapter:
        if name not in self._adapters:
            self._adapters[name] = build_adapter(
                name, timeout=self.config.poll_timeout_s, overheat_c=self.config.overheat_c
            )
        return self._adapters[name]

    def _refused(self, exc: AuthRefused) -> None:
        self.auth_refused = str(exc)
        self.spool.set_meta(auth_refused_at=_now_iso(), auth_refused=str(exc))
        log.error(
            "the server refused this collector's token (%s). It was revoked or rotated: stopping. Enroll again "
            "with --register CODE (the spool is kept and will be sent afterwards).",
            exc.status,
        )
        self.stop()

    # --- inventory ------------------------------------------------------------------------------------------

    async def load_inventory(self) -> bool:
        """Refresh the miner list; on failure keep the current one, or the last one cached in the spool."""
        if self.config.inventory == "static":
            self.miners, self.unaddressable = list(self.config.miners), []
            self.inventory_at = time.time()
            return True
        try:
            items = await self.client.inventory()
        except AuthRefused as exc:
            self._refused(exc)
            return False
        except (Retryable, RequestRefused) as exc:
            if not self.miners:
                cached = self.spool.get_meta("inventory")
                if cached:
                    self.inventory_items = cached
                    await self._map_miners(cached)
                    log.warning(
                        "inventory unavailable (%s): polling the %d miners cached at %s",
                        exc,
                        len(self.miners),
                        self.spool.get_meta("inventory_at"),
                    )
                    return False
            log.warning("inventory unavailable (%s): keeping the %d miners known", exc, len(self.miners))
            return False
        self.inventory_items = items
        await self._map_miners(items)
        self.inventory_at = time.time()
        self.spool.set_meta(inventory=items, inventory_at=_now_iso())
        if self.unaddressable:
            log.warning(
                "%d miners are not polled (no address in the inventory, or not found on the simulator): %s",
                len(self.unaddressable),
                ", ".join(self.unaddressable[:20]),
            )
        log.info("inventory: %d miners to poll", len(self.miners))
        return True

    async def _map_miners(self, items: list[dict]) -> None:
        if self.config.simulator_base_port is not None:
            count = max(len(items), self.config.simulator_ports or 0)
            self.sim_ports.update(await self.discover_simulator(count))
            self.discovered_at = time.monotonic()
        self.miners, self.unaddressable = miners_from_inventory(self.config, items, self.sim_ports)

    async def discover_simulator(self, count: int) -> dict[str, int]:
        """{serial: port} of the simulated miners answering "version" on ports base … base + count - 1 (the
        simulator names each miner's serial in VERSION "SN"), skipping ports already mapped. Works whatever order
        the simulator was given its miners in; a miner that is down now is found on a later try."""
        base, host = self.config.simulator_base_port, self.config.simulator_host
        taken = set(self.sim_ports.values())
        gate = asyncio.Semaphore(max(self.config.concurrency, 64))
        timeout = min(self.config.poll_timeout_s, 2.0)

        async def probe(port: int) -> tuple[str, int] | None:
            async with gate:
                try:
                    reply = await cgminer.query(host, port, "version", timeout)
                except cgminer.CGMinerError:
                    return None
            rows = cgminer.section(reply, "VERSION")
            serial = rows[0].get("SN") if rows else None
            return (serial, port) if isinstance(serial, str) and serial else None

        ports = [p for p in range(base, min(base + count, 65536)) if p not in taken]
        found = dict(r for r in await asyncio.gather(*(probe(p) for p in ports)) if r is not None)
        log.info("simulator on %s: %d miners found on %d ports from %d", host, len(found), len(ports), base)
        return found

    # --- polling --------------------------------------------------------------------------------------------

    async def _poll_miner(self, miner: MinerSpec, ts: str, gate: asyncio.Semaphore) -> Sample:
        async with gate:
            try:
                return await self.adapter(miner.adapter).poll(miner, ts=ts)
            except Exception:
                log.exception("%s: the %s adapter failed", miner.serial, miner.adapter)
                return Sample.offline(miner.serial, ts, error=POLL_FAILED)

    async def poll_once(self, when: datetime | None = None) -> list[Sample]:
        """Poll every miner once, write the samples (and any safety events) to the spool, wake the pusher."""
        ts = utc_iso(when or datetime.now(UTC))
        started = time.monotonic()
        gate = asyncio.Semaphore(self.config.concurrency)
        samples = list(await asyncio.gather(*(self._poll_miner(m, ts, gate) for m in self.miners)))
        failed = sum(
            1 for s in samples if s.status == "offline" and (UNREACHABLE in s.errors or POLL_FAILED in s.errors)
        )
        self.poll_errors_total += failed
        self.poll_errors_unreported += failed
        self.spool_samples(samples)
        self._spool_safety(samples)
        self._previously_online = {s.miner for s in samples if not (s.status == "offline" and UNREACHABLE in s.errors)}
        self.last_cycle = {
            "last_poll_at": ts,
            "last_poll_duration_s": round(time.monotonic() - started, 3),
            "miners_polled": len(samples) - failed,
            "miners_total": len(self.miners),
            "poll_errors": failed,
        }
        self.spool.set_meta(**self.last_cycle, poll_errors_total=self.poll_errors_total)
        self._wake.set()
        return samples

    def spool_samples(self, samples: list[Sample]) -> None:
        size = self.config.batch_size
        for start in range(0, len(samples), size):
            chunk = samples[start : start + size]
            self.spool.add(
                TELEMETRY,
                {"samples": [s.to_json() for s in chunk]},
                items=len(chunk),
                oldest_ts=min(s.ts for s in chunk),
            )

    def _spool_safety(self, samples: list[Sample]) -> None:
        events, opened, closed = detect(samples, self.spool.open_conditions(), self._previously_online)
        if events:
            for event in events:
                shown = {k: v for k, v in event.details.items() if k != "serials"}
                log.warning("safety: %s on %s at %s %s", event.kind, event.miner or "the site", event.ts, shown)
            self.spool.add(
                SAFETY,
                {"events": [e.to_json() for e in events]},
                items=len(events),
                oldest_ts=min(e.ts for e in events),
                opened=opened,
                closed=closed,
            )
        elif closed:
            self.spool.set_conditions([], closed)

    # --- pushing --------------------------------------------------------------------------------------------

    async def push_one(self, kind: str) -> str:
        """Send the oldest pending batch of ``kind``: "empty", "sent" or "quarantined"; raises Retryable or
        AuthRefused (the batch stays first in line)."""
        batch = self.spool.next_batch(kind)
        if batch is None:
            return "empty"
        send = self.client.push_telemetry if kind == TELEMETRY else self.client.push_safety
        try:
            answer = await send(batch.body)
        except RequestRefused as exc:
            self.spool.quarantine(batch.id, str(exc))
            self.spool.incr_meta("quarantined_total")
            log.error(
                "the server refused %s batch %d (%d items, from %s) as malformed: %s. Quarantined in the spool "
                "(see --status; --requeue-quarantined sends it again after a fix).",
                kind, batch.id, batch.items, batch.oldest_ts, exc,
            )  # fmt: skip
            return "quarantined"
        except Retryable as exc:
            self.spool.record_failure(batch.id, str(exc))
            raise
        self.spool.delete(batch.id)
        self._record_answer(kind, batch.items, answer)
        return "sent"

    def _record_answer(self, kind: str, items: int, answer: dict) -> None:
        values = {"last_push_ok_at": _now_iso(), "last_push_error": None}
        if kind == TELEMETRY:
            rejected = answer.get("rejected") or []
            for key, value in (
                ("accepted_total", answer.get("accepted")),
                ("duplicates_total", answer.get("duplicates")),
                ("rejected_samples_total", len(rejected)),
            ):
                if isinstance(value, int) and value:
                    self.spool.incr_meta(key, value)
            if rejected:
                reasons = Counter(str(r.get("reason", "?")) for r in rejected if isinstance(r, dict))
                if reasons.get("ts_in_future"):
                    log.error("the server finds samples in the future: is this machine's clock right (NTP)?")
                examples = ", ".join(sorted({str(r.get("miner")) for r in rejected if isinstance(r, dict)})[:10])
                log.warning(
                    "the server rejected %d of %d samples (%s); miners: %s",
                    len(rejected), items, "; ".join(f"{reason} ×{n}" for reason, n in reasons.most_common()), examples,
                )  # fmt: skip
        self.spool.set_meta(**values)

    async def drain(self, *, max_retries: int | None = None) -> bool:
        """Push until the spool is empty (True), the collector stops, or ``max_retries`` failures (False)."""
        failures = 0
        while not self.stopping:
            try:
                results = [await self.push_one(kind) for kind in KINDS]
            except Retryable as exc:
                failures += 1
                self.push_errors_unreported += 1
                delay = self.backoff.next_delay(exc.retry_after)
                self.spool.set_meta(last_push_error=str(exc), last_push_error_at=_now_iso())
                depth = self.spool.depth()
                log.log(
                    logging.ERROR if isinstance(exc, Misconfigured) else logging.WARNING,
                    "push failed (%s); %d samples spooled; retrying in %.1f s%s",
                    exc, depth["pending_samples"], delay,
                    " (as the server asked)" if exc.retry_after is not None else "",
                )  # fmt: skip
                if max_retries is not None and failures > max_retries:
                    return False
                await self._sleep(delay)
                continue
            except AuthRefused as exc:
                self._refused(exc)
                return False
            self.backoff.reset()
            if all(r == "empty" for r in results):
                return True
        return False

    # --- health ---------------------------------------------------------------------------------------------

    def health_report(self) -> dict:
        """What POST /health gets. The server stores the fields it knows (spool_depth, poll_errors and
        push_errors since the last report, miners_polled, miners_total, uptime_s, last_push_at, last_poll_at,
        last_error) and ignores the rest, which is there for whoever reads the raw report."""
        depth = self.spool.depth()
        meta = self.spool.all_meta()
        last_error = meta.get("last_push_error") if meta.get("last_push_error") else None
        return {
            "version": VERSION,
            "spool_depth": depth["pending_samples"],
            "poll_errors": self.poll_errors_unreported,
            "push_errors": self.push_errors_unreported,
            "miners_polled": self.last_cycle.get("miners_polled", 0),
            "miners_total": len(self.miners),
            "uptime_s": round(time.monotonic() - self.started),
            "last_push_at": meta.get("last_push_ok_at"),
            "last_poll_at": self.last_cycle.get("last_poll_at"),
            "last_error": last_error[:200] if last_error else None,
            # not stored by the server today; kept in the report for people and later versions
            "last_push_ok_at": meta.get("last_push_ok_at"),
            "oldest_spooled_ts": depth["oldest_spooled_ts"],
            "spool_batches": depth["pending_batches"],
            "pending_safety_events": depth["pending_safety_events"],
            "quarantined_batches": depth["quarantined_batches"],
            "dropped_samples": meta.get("dropped_samples", 0),
            "rejected_samples_total": meta.get("rejected_samples_total", 0),
            "poll_errors_total": self.poll_errors_total,
            "miners_unaddressable": len(self.unaddressable),
            "last_poll_duration_s": self.last_cycle.get("last_poll_duration_s"),
            "poll_interval_s": self.config.poll_interval_s,
            "curtail_restores_pending": self.restores.pending(),  # CURTAILs not yet restored and reported
        }

    async def send_health(self) -> bool:
        report = self.health_report()
        try:
            await self.client.health(report)
        except AuthRefused as exc:
            self._refused(exc)
            return False
        except (Retryable, RequestRefused) as exc:
            log.warning("health report not delivered: %s", exc)
            return False
        self.poll_errors_unreported -= report["poll_errors"]
        self.push_errors_unreported -= report["push_errors"]
        return True

    # --- commands (issue 8) -----------------------------------------------------------------------------------
    #
    # Long-poll the server, verify each envelope (signature, site, expiry, clock skew, nonce: CommandVerifier),
    # run it through the adapters, acknowledge with one result per target. The nonce is recorded before the
    # command runs, so nothing ever runs twice. A refusal is acknowledged too, so the command ends instead of
    # waiting for its timeout: every target "failed" with the reason ("refused by the edge: expired: ..."). A
    # replay (the server redelivers a command whose acknowledgement was lost) is acknowledged again with the
    # results recorded the first time; if none were recorded (the collector stopped mid-command), every target
    # is reported failed as "interrupted": whether it ran is unknown, and it is not run again. An envelope
    # without a numeric command_id or a nonce is only logged (there is nothing to acknowledge).

    def command_verifier(self) -> CommandVerifier | None:
        """The verifier for this device's credentials (loaded from the config's file when not given), or None
        when there are no usable credentials (no HMAC secret or site): commands are then not polled."""
        creds = self.credentials
        if creds is None:
            try:
                creds = self.credentials = load_credentials(self.config.credentials_path)
            except CredentialsError as exc:
                log.warning("commands are not polled: %s", exc)
                return None
        if not creds.hmac_secret or creds.site_id in (None, ""):
            log.warning("commands are not polled: the credentials hold no HMAC secret or site (register again)")
            return None
        return CommandVerifier(creds.hmac_secret, NonceStore(self.spool.db), self.clock, site_id=creds.site_id)

    async def handle_command(self, verifier: CommandVerifier, envelope) -> list[dict] | None:
        """Verify, run and acknowledge one envelope; returns the results acknowledged (None if not acked)."""
        checked = verifier.verify(envelope)
        raw = envelope if isinstance(envelope, dict) else {}
        command_id, nonce = raw.get("command_id"), raw.get("nonce")
        if isinstance(checked, Refusal):
            targets = _serials(raw.get("targets"))
            if checked.reason == REPLAYED and checked.previous_result is not None:
                log.info("command %s delivered again: acknowledging its recorded results", command_id)
                results = checked.previous_result
            elif checked.reason == REPLAYED:
                log.warning("command %s delivered again, its first run was interrupted: not run again", command_id)
                results = [_refused_result(t, "interrupted: received before, its outcome is unknown") for t in targets]
            else:
                log.warning("command %s refused: %s: %s", command_id, checked.reason, checked.message)
                results = [
                    _refused_result(t, f"refused by the edge: {checked.reason}: {checked.message}") for t in targets
                ]
        else:
            log.info("command %s: %s on %d miner(s)", checked.command_id, checked.type, len(checked.targets))
            results = await execute(
                checked,
                self.adapter,
                {m.serial: m for m in self.miners},
                nonce_store=verifier.nonces,
                restores=self.restores,
                now=self.clock(),
            )
        self.commands_handled += 1
        if not (isinstance(command_id, int) or (isinstance(command_id, str) and command_id.isdigit())):
            return None
        if not isinstance(nonce, str) or not nonce:
            return None
        try:
            await self.client.ack_command(command_id, nonce, results)
        except AuthRefused:
            raise
        except (Retryable, RequestRefused) as exc:
            # Not retried here: the server redelivers an unacknowledged command and the replay acks again.
            log.warning("acknowledgement of command %s not delivered: %s", command_id, exc)
            return None
        return results

    async def _command_loop(self) -> None:
        verifier = self.command_verifier()
        if verifier is None:
            await self._stop.wait()  # ending early would end the collector (run() waits for the first loop out)
            return
        while not self.stopping and self.inventory_at is None:  # the miners must be known before commands run
            await self._interruptible_sleep(0.2)
        while not self.stopping:
            try:
                envelopes = await self.client.poll_commands(self.command_wait_s)
            except (Retryable, RequestRefused) as exc:
                delay = self.command_backoff.next_delay(getattr(exc, "retry_after", None))
                log.warning("command poll failed (%s); again in %.1f s", exc, delay)
                await self._sleep(delay)
                continue
            self.command_backoff.reset()
            for envelope in envelopes:
                if self.stopping:
                    return
                await self.handle_command(verifier, envelope)

    # --- CURTAIL restores (edge.collector.curtail) -------------------------------------------------------------
    #
    # Each tick: run the restores whose window has ended (also those that ended while the collector was down: the
    # plan is in the spool's SQLite), then report each restore with POST commands/{id}/ack phase "restore". The
    # report is retried with backoff while the server is unreachable (the next attempt time is kept in the table,
    # so a restart goes on from there); a server that refuses it (400/404/409/410/422, e.g. one without the
    # restore phase) is not asked again and the results stay in the table. The miners come from the inventory,
    # else from the address recorded with the plan (a restart while the server is down still restores).

    async def run_restores(self) -> int:
        """Run the restores and reports due now; returns how many restores were reported (acknowledged)."""
        now = self.clock()
        miners = {m.serial: m for m in self.miners}
        reported = 0
        for restore in self.restores.due(now):
            results = restore.results
            if results is None:  # the window has ended: put the miners back
                log.info("CURTAIL %s ended at %s: restoring %d miner(s)", restore.command_id, restore.end_at,
                         len(restore.targets))  # fmt: skip
                results = await run_restore(restore, self.adapter, miners, store=self.restores, now=now)
                if results is None:
                    continue  # some are retried later
            if await self._report_restore(restore.command_id, restore.nonce, restore.ack_attempts, results):
                reported += 1
        return reported

    async def _report_restore(self, command_id: str, nonce: str, attempts: int, results: list[dict]) -> bool:
        try:
            await self.client.ack_command(command_id, nonce, results, phase="restore")
        except AuthRefused:
            raise
        except (Retryable, RequestRefused) as exc:
            if isinstance(exc, RequestRefused) or exc.status in REFUSED_ACK_STATUSES:
                log.warning(
                    "the server refused the restore report of CURTAIL %s (%s); kept in the spool, not sent again",
                    command_id, exc,
                )  # fmt: skip
                self.restores.finish(command_id, REFUSED, str(exc))
                return False
            delay = ack_delay(attempts, self._rng)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            log.warning("restore report of CURTAIL %s not delivered (%s); again in %.1f s", command_id, exc, delay)
            self.restores.ack_failed(command_id, str(exc), next_at=self.clock().timestamp() + delay)
            return False
        self.restores.finish(command_id, ACKED)
        return True

    async def _restore_loop(self) -> None:
        while not self.stopping:
            try:
                await self.run_restores()
            except AuthRefused:
                raise
            except Exception:  # a bug must not end the collector: logged, tried again next tick
                log.exception("CURTAIL restores failed")
            await self._interruptible_sleep(RESTORE_TICK_S)

    # --- loops ----------------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.stopping:
            if self.config.inventory == "server" and (
                self.inventory_at is None or time.time() - self.inventory_at >= self.config.inventory_refresh_s
            ):
                await self.load_inventory()
                if self.stopping:
                    return
            elif (
                self.config.simulator_base_port is not None
                and self.unaddressable
                and time.monotonic() - (self.discovered_at or 0) >= max(60.0, self.config.poll_interval_s)
            ):
                await self._map_miners(self.inventory_items)
            if self.miners:
                await self.poll_once()
            else:
                log.warning("no miners to poll yet (inventory empty or unavailable)")
            next_at += self.config.poll_interval_s
            if next_at < loop.time():
                skipped = int((loop.time() - next_at) // self.config.poll_interval_s) + 1
                log.warning("a poll cycle took longer than the interval: skipping %d tick(s)", skipped)
                next_at += skipped * self.config.poll_interval_s
            await self._interruptible_sleep(next_at - loop.time())

    async def _push_loop(self) -> None:
        while not self.stopping:
            self._wake.clear()
            await self.drain()
            if self.stopping:
                return
            await self._wake.wait()

    async def _health_loop(self) -> None:
        while not self.stopping:
            await self.send_health()
            await self._interruptible_sleep(self.config.health_interval_s)

    async def run(self) -> int:
        if self.config.inventory == "static":
            await self.load_inventory()
        self.spool.set_meta(started_at=_now_iso(), version=VERSION, auth_refused_at=None, auth_refused=None)
        log.info(
            "collector %s: polling every %.0f s, pushing to %s, spool %s",
            VERSION, self.config.poll_interval_s, self.client.base_url, self.config.spool_path,
        )  # fmt: skip
        tasks = [
            asyncio.create_task(self._poll_loop(), name="poll"),
            asyncio.create_task(self._push_loop(), name="push"),
            asyncio.create_task(self._health_loop(), name="health"),
            asyncio.create_task(self._command_loop(), name="commands"),
            asyncio.create_task(self._restore_loop(), name="restores"),
        ]
        stop_waiter = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([*tasks, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
        failure = None
        for task in done:
            if task is not stop_waiter and not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                if isinstance(failure, AuthRefused):
                    self._refused(failure)
                    failure = None
                else:
                    log.error("the %s loop failed", task.get_name(), exc_info=failure)
        self.stop()
        for task in [*tasks, stop_waiter]:
            task.cancel()
        await asyncio.gather(*tasks, stop_waiter, return_exceptions=True)
        for adapter in self._adapters.values():
            with contextlib.suppress(Exception):
                await adapter.close()
        if self.auth_refused:
            return EXIT_AUTH
        return EXIT_FAILED if failure else EXIT_OK

    async def run_once(self, *, max_retries: int = 3) -> int:
        """One inventory load, one poll, then push with at most ``max_retries`` retries (for --once)."""
        await self.load_inventory()
        if self.auth_refused or self.stopping:
            return EXIT_AUTH
        if self.miners:
            await self.poll_once()
        drained = await self.drain(max_retries=max_retries)
        if self.auth_refused:
            return EXIT_AUTH
        if drained:
            await self.send_health()
        return EXIT_AUTH if self.auth_refused else (EXIT_OK if drained else EXIT_FAILED)


def _serials(targets) -> list[str]:
    """The serials of an envelope's targets (plain serials, or CURTAIL's {"serial", "action", ...} objects)."""
    if not isinstance(targets, list):
        return []
    out = []
    for target in targets:
        serial = target.get("serial") if isinstance(target, dict) else target
        if isinstance(serial, str) and serial:
            out.append(serial)
    return out


def _refused_result(serial: str, message: str) -> dict:
    return {"miner": serial, "status": COMMAND_FAILED, "message": message[:500]}
