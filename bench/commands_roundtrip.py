"""One command at a time, end to end on loopback: propose → (approve) → edge poll → execute on the simulator →
ack → COMPLETED as the API shows it, and then until telemetry verifies the effect.

    .venv/bin/python bench/commands_roundtrip.py [--runs 3] [--commands 30] [--poll-interval 5] [--keep-db]

Real processes (bench/_commands_stack.py): PostgreSQL database ``bench_cmd`` (dropped and created, 30 demo
miners, dropped at the end unless --keep-db), uvicorn --workers 2 in production mode, the Celery worker,
housekeeping worker and beat of the Procfile, the miner simulator and the edge collector of site tx-permian
(``python -m edge.collector``, poll interval ``--poll-interval`` s, command long poll 25 s).

Per run, ``--commands`` commands one after another, alternating SET_FAN (LOW: runs without approval) and
POWER_MODE (MEDIUM: one approver), each on the next miner of the site, each changing the miner's setting.
The owner proposes with their API token, the admin approves with theirs; the client then reads
``GET /api/v1/commands/{id}`` every 20 ms until the status is final. Between two commands a random pause
(0.2–1.2 s) so a proposal lands anywhere in the server's long-poll cycle.

Printed per run and as medians of the runs: client-observed time to COMPLETED (p50/p95/max, LOW and MEDIUM
apart), and where the time goes, from the audit events' timestamps (written in the transaction of each
transition) and the simulator's record of the write it carried out:

  propose     request start → command.proposed (HTTP, scoring, insert)
  approve     command.proposed → command.approved (MEDIUM: the approver's request; LOW: auto, ~0)
  dispatch    command.approved → command.dispatched (waiting for the device's long poll to see it)
  edge        command.dispatched → the simulator's write (answer to the poll, signature and nonce checks,
              the state read before acting, the write itself)
  ack         the simulator's write → command.completed (the acknowledgement request and its transaction)
  observed    command.completed → the client saw it (its 20 ms read interval)

Verification: when the ``commands.verify`` job exists (commands/verification.py), each command's
``verification`` is followed until it is final and the time from the proposal to ``verified_at`` is
compared with 2 × the collector's poll interval (the figure of issue 8)."""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict

from _commands_stack import ROOT, Api, Stack, drop_database, machine_line, make_tokens, setup, stack_env
from _setup import percentile

DATABASE = "postgres://postgres@127.0.0.1:5432/bench_cmd"
SITE = "tx-permian"
FINAL = {"COMPLETED", "PARTIAL", "FAILED", "TIMEOUT", "DENIED", "CANCELLED"}
VERIFIED_FINAL = {"verified", "partial", "not_seen", "n/a"}
READ_EVERY_S = 0.02
PARTS = ("propose", "approve", "dispatch", "edge", "ack", "observed")


def has_verification() -> bool:
    return (ROOT / "commands" / "verification.py").exists() and importlib.util.find_spec("commands.verification")


def verify_schedule(every_s: float) -> str:
    """How production runs ``commands.verify`` here: beat's schedule of it (created by sync_schedules when
    hashinsight/events/schedules.py declares it; otherwise the bench creates one, as an admin would, every
    ``every_s`` s on the housekeeping queue), and whether the ``telemetry.ingested`` hook is registered."""
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from hashinsight.events.registry import handlers_for

    try:
        task = PeriodicTask.objects.filter(task="commands.verify").select_related("interval").first()
        if task is None:
            interval, _ = IntervalSchedule.objects.get_or_create(every=int(every_s), period="seconds")
            PeriodicTask.objects.create(name="commands: verify (bench)", task="commands.verify", interval=interval,
                                        queue="housekeeping")  # fmt: skip
            how = f"followed; commands.verify not in schedules.py: the bench scheduled it every {int(every_s)} s"
        else:
            how = f"followed; commands.verify by beat every {task.interval.every} {task.interval.period}"
        names = [getattr(h, "__qualname__", repr(h)) for h in handlers_for("telemetry.ingested")]
        hook = "registered" if any("verify" in n for n in names) else "not registered"
        return f"{how}; telemetry.ingested hook {hook}"
    finally:
        connection.close()


def stats(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v, v
    return statistics.median(values), percentile(values, 95), values[-1]


def fmt(values_ms: list[float]) -> str:
    p50, p95, top = stats(values_ms)
    return f"p50 {p50:7.0f} ms  p95 {p95:7.0f} ms  max {top:7.0f} ms  (n={len(values_ms)})"


def plan_commands(miners: list[tuple[int, str, str]], count: int, offset: int) -> list[dict]:
    """Alternate LOW and MEDIUM commands over the miners, each changing what it sets."""
    out = []
    modes = ("low", "high", "normal")
    for i in range(count):
        k = offset + i
        miner_id, _serial, cooling = miners[k % len(miners)]
        if i % 2 == 0 and cooling != "hydro":  # a hydro-cooled miner has no fans: POWER_MODE instead
            out.append({"type": "SET_FAN", "params": {"percent": 40 + (k * 7) % 56}, "targets": [miner_id]})
        else:
            out.append({"type": "POWER_MODE", "params": {"mode": modes[(k // len(miners)) % 3]}, "targets": [miner_id]})
    return out


def audit_times(command_ids: list[int]) -> dict[int, dict[str, float]]:
    from django.db import connection

    from hashinsight.events.models import AuditEvent

    out: dict[int, dict[str, float]] = defaultdict(dict)
    refs = [f"command:{pk}" for pk in command_ids]
    try:
        for ref, event_type, created in AuditEvent.objects.filter(reference__in=refs).values_list(
            "reference", "event_type", "created_at"
        ):
            out[int(ref.split(":")[1])].setdefault(event_type, created.timestamp())
    finally:
        connection.close()
    return out


def verification_times(command_ids: list[int]) -> dict[int, tuple[str, float | None]]:
    from django.db import connection
    from django.db.models import Max

    from commands.models import Command

    try:
        rows = Command.objects.filter(pk__in=command_ids).annotate(last=Max("targets__verified_at"))
        return {c.pk: (c.verification, c.last.timestamp() if c.last else None) for c in rows}
    finally:
        connection.close()


def one_run(stack: Stack, owner: Api, admin: Api, commands: list[dict], rng: random.Random) -> list[dict]:
    out = []
    for body in commands:
        time.sleep(rng.uniform(0.2, 1.2))
        started = time.time()
        status, answer = owner.call("POST", "/api/v1/commands/propose", body)
        proposed_rt = time.time() - started
        if status != 201:
            raise SystemExit(f"propose answered {status}: {answer}")
        pk, tier = answer["id"], answer["risk_tier"]
        approve_rt = None
        if answer["status"] == "PENDING_APPROVAL":
            t = time.time()
            status, answer = admin.call("POST", f"/api/v1/commands/{pk}/approve", {"reason": "bench"})
            approve_rt = time.time() - t
            if status != 200:
                raise SystemExit(f"approve answered {status}: {answer}")
        deadline = started + 60
        while answer["status"] not in FINAL and time.time() < deadline:
            time.sleep(READ_EVERY_S)
            status, answer = owner.call("GET", f"/api/v1/commands/{pk}")
        seen = time.time()
        out.append({"id": pk, "type": body["type"], "tier": tier, "status": answer["status"], "started": started,
                    "seen": seen, "propose_rt": proposed_rt, "approve_rt": approve_rt,
                    "serial": answer["targets"][0]["serial"]})  # fmt: skip
    return out


def breakdown(rows: list[dict], writes: dict[tuple[str, int], float]) -> dict[str, list[float]]:
    """Per part (PARTS), milliseconds for each command that has every timestamp."""
    times = audit_times([r["id"] for r in rows])
    parts: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        a = times.get(r["id"], {})
        wrote = writes.get((r["serial"], r["id"]))
        needed = ("command.proposed", "command.approved", "command.dispatched", "command.completed")
        if wrote is None or not all(k in a for k in needed):
            continue
        marks = [r["started"], a["command.proposed"], a["command.approved"], a["command.dispatched"], wrote,
                 a["command.completed"], r["seen"]]  # fmt: skip
        for name, (x, y) in zip(PARTS, itertools.pairwise(marks), strict=True):
            parts[name].append((y - x) * 1000)
    return parts


def match_writes(stack: Stack, rows: list[dict]) -> dict[tuple[str, int], float]:
    """The simulator's write time for each command (the first write to its miner after its dispatch)."""
    times = audit_times([r["id"] for r in rows])
    by_serial: dict[str, list[float]] = defaultdict(list)
    for w in stack.writes():
        by_serial[w["serial"]].append(w["t"])
    out = {}
    for r in rows:
        dispatched = times.get(r["id"], {}).get("command.dispatched")
        if dispatched is None:
            continue
        after = [t for t in by_serial[r["serial"]] if t >= dispatched - 0.05 and t <= r["seen"]]
        if after:
            out[(r["serial"], r["id"])] = min(after)
    return out


def report_verification(per_run: list[dict], poll_interval: float, wait_s: float) -> None:
    """Proposal → the verification recorded as "verified" (its ``command.verified`` audit event, written in
    the job's transaction), against 2 × the poll interval; and the two waits inside it: acknowledgement → the
    first sample showing the effect (the target's ``verified_at`` is that reading's time), and that sample →
    the job recording it."""
    all_ids = [r["id"] for run in per_run for r in run["rows"]]
    started = {r["id"]: r["started"] for run in per_run for r in run["rows"]}
    deadline = time.time() + wait_s
    found = verification_times(all_ids)
    while time.time() < deadline and any(v[0] not in VERIFIED_FINAL for v in found.values()):
        time.sleep(1)
        found = verification_times(all_ids)
    events = audit_times(all_ids)
    counts = Counter(state or "(empty)" for state, _ in found.values())
    print(f"\nverification ({wait_s:.0f} s at most): {dict(counts)}")
    limit = 2 * poll_interval * 1000
    for index, run in enumerate(per_run):
        parts: dict[str, list[float]] = defaultdict(list)
        for r in run["rows"]:
            state, reading = found[r["id"]]
            e = events.get(r["id"], {})
            if state != "verified" or "command.verified" not in e or "command.completed" not in e or reading is None:
                continue
            parts["total"].append((e["command.verified"] - started[r["id"]]) * 1000)
            parts["ack → effect sample"].append((reading - e["command.completed"]) * 1000)
            parts["sample → recorded"].append((e["command.verified"] - reading) * 1000)
        run["verified"] = parts["total"]
        if parts["total"]:
            print(f"run {index + 1}: proposal → verified {fmt(parts['total'])}")
            for name in ("ack → effect sample", "sample → recorded"):
                print(f"    {name:20} {fmt(parts[name])}")
    vals = [stats(r["verified"]) for r in per_run if r.get("verified")]
    if vals:
        p95 = statistics.median(v[1] for v in vals)
        print(f"  median of runs: proposal → verified p50 {statistics.median(v[0] for v in vals):.0f} ms, "
              f"p95 {p95:.0f} ms; target p95 < 2 × {poll_interval:g} s = {limit:.0f} ms: "
              f"{'met' if p95 < limit else 'NOT met'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=30, help="commands per run")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the collector's poll interval (s)")
    parser.add_argument("--miners", type=int, default=30, help="demo miners seeded (a third at the bench's site)")
    parser.add_argument("--base-port", type=int, default=24028, help="the simulator's first miner port")
    parser.add_argument("--verify-wait", type=float, default=None, help="max seconds to wait for verification")
    parser.add_argument("--verify-every", type=float, default=5, help="commands.verify interval if none is declared")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_CMD_DATABASE_URL", DATABASE)
    env = stack_env(database_url)
    print(machine_line())
    setup(env, args.miners)
    from miners.models import Miner

    miners = list(Miner.objects.filter(site__slug=SITE).order_by("pk").values_list("pk", "serial", "model__cooling"))
    owner_token, admin_token = make_tokens("owner", "admin")
    stack = Stack(env, [SITE], poll_interval_s=args.poll_interval, base_port=args.base_port)
    verify = bool(has_verification())
    verify_wait = args.verify_wait or 90  # SET_FAN/POWER_MODE windows: max(60 s, 3 polls)
    verify_how = verify_schedule(args.verify_every) if verify else ""
    try:
        stack.start()
        ready = stack.wait_edge_ready()
        print(f"stack up: uvicorn ×{stack.web_workers} on :{stack.port}, worker + housekeeping + beat, simulator "
              f"{stack.plan.miners} miners, collector of {SITE} ({len(miners)} miners) polling every "
              f"{args.poll_interval:g} s; first telemetry after {ready:.1f} s")  # fmt: skip
        print(
            f"{args.runs} runs × {args.commands} commands (SET_FAN LOW / POWER_MODE MEDIUM alternately); "
            f"verification {verify_how if verify else 'not measured: commands/verification.py absent'}"
        )
        owner, admin = Api(stack.port, owner_token), Api(stack.port, admin_token)
        rng = random.Random(8)
        per_run = []
        # Warm-up: a few commands not counted (first requests of each worker, first long polls).
        one_run(stack, owner, admin, plan_commands(miners, 4, 10_000), rng)
        for run in range(args.runs):
            rows = one_run(stack, owner, admin, plan_commands(miners, args.commands, run * args.commands), rng)
            writes = match_writes(stack, rows)
            parts = breakdown(rows, writes)
            total = [(r["seen"] - r["started"]) * 1000 for r in rows]
            bad = [r for r in rows if r["status"] != "COMPLETED"]
            tiers = {t: sum(1 for r in rows if r["tier"] == t) for t in sorted({r["tier"] for r in rows})}
            result = {"total": total, "parts": parts, "rows": rows, "bad": bad}
            for tier in ("LOW", "MEDIUM"):
                result[tier] = [(r["seen"] - r["started"]) * 1000 for r in rows if r["tier"] == tier]
            print(f"run {run + 1}: to COMPLETED {fmt(total)}; tiers {tiers}; not completed: {len(bad)}")
            for tier in ("LOW", "MEDIUM"):
                if result[tier]:
                    print(f"    {tier:6} {fmt(result[tier])}")
            for name in PARTS:
                if parts.get(name):
                    print(f"    {name:9} {fmt(parts[name])}")
            per_run.append(result)

        print("\nmedian of runs:")
        for key, label in (("total", "all"), ("LOW", "LOW"), ("MEDIUM", "MEDIUM")):
            vals = [stats(r[key]) for r in per_run if r[key]]
            if vals:
                p50, p95, top = (statistics.median(v[i] for v in vals) for i in range(3))
                verdict = "met" if p95 < 1000 else "NOT met"
                print(f"  to COMPLETED {label:6} p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  max {top:6.0f} ms   "
                      f"(target p95 < 1 s: {verdict})")  # fmt: skip
        print("  where the time goes (median of the runs' per-part p50 / p95, ms):")
        for name in PARTS:
            vals = [stats(r["parts"][name]) for r in per_run if r["parts"].get(name)]
            if vals:
                print(f"    {name:9} p50 {statistics.median(v[0] for v in vals):6.0f}   "
                      f"p95 {statistics.median(v[1] for v in vals):6.0f}")  # fmt: skip

        if verify:
            report_verification(per_run, args.poll_interval, verify_wait)
        owner.close()
        admin.close()
    finally:
        stack.stop()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(database_url)
    print(f"logs: {stack.processes and (ROOT / 'var/bench/commands')}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
