"""1,000 commands proposed at once by 10 API clients against 500 simulated miners: none lost, none dispatched or
carried out twice, the audit chain intact, and how long it all takes; then the audit chain's append rate
under concurrent writers.

    .venv/bin/python bench/commands_concurrency.py [--runs 3] [--commands 1000] [--clients 10] [--duplicates 50]
                                                   [--poll-interval 5] [--audit-events 2000] [--keep-db]

Real processes (bench/_commands_stack.py): PostgreSQL database ``bench_cmd_conc`` (dropped and created,
500 demo miners over 3 sites, all active; dropped at the end unless --keep-db), uvicorn --workers 2 in
production mode, the Procfile's Celery worker, housekeeping worker and beat, the miner simulator serving the
500 miners, and one edge collector per site (3, ``python -m edge.collector``).

Per run: ``--clients`` threads, each with its own API token of the owner, propose their share of
``--commands`` commands as fast as the server answers (command k targets miner k mod 500; SET_FAN, LOW, runs
at once, and POWER_MODE, MEDIUM, needs one approval, alternately), each with its own dedupe key; on top,
``--duplicates`` of them are sent twice at the same instant on two connections with two tokens (same dedupe
key, same intent: both answers must name one command). Two approver threads (the admin's token) approve each
MEDIUM command as soon as its proposal is answered. The run ends when every command is final.

Checked per run:
- every proposal answered (201 created / 200 the live command of that dedupe key; a 503 is retried after its
  Retry-After and counted), and both requests of each racing pair answered with one command (one 201, one 200);
- from the database: each command dispatched exactly once (one ``command.dispatched`` audit event each, none
  without), every command final, and how;
- the ground truth: the simulator's record of the writes its miners carried out (bench/_sim_recorder.py) is
  exactly the multiset the commands acknowledged "ok" call for, (serial, verb, value) — nothing missing,
  nothing twice — and each collector's log names each command it ran once;
- ``verify_chain`` over the whole chain: OK, with the count and the time it took.

Then the append rate: ``--audit-events`` events appended with ``audit_append`` directly, one per transaction
(as every command transition does), by 1, 4 and 10 threads with a connection each (stack stopped, so only
the appends run); events/s, and the chain verified after each."""

from __future__ import annotations

import argparse
import os
import queue
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict

from _commands_stack import ROOT, WORK, Api, Stack, drop_database, machine_line, make_tokens, setup, stack_env
from _setup import percentile

DATABASE = "postgres://postgres@127.0.0.1:5432/bench_cmd_conc"
SITES = ("tx-permian", "no-kvaloya", "py-itaipu")
FINAL = ("COMPLETED", "PARTIAL", "FAILED", "TIMEOUT", "DENIED", "CANCELLED")
RAN = re.compile(r"edge\.collector: command (\d+): ")


def plan(miners: list[tuple[int, str, str]], count: int, clients: int, duplicates: int, run: int) -> list[list[dict]]:
    """Per client, its proposals in order. Proposal k goes to client k mod clients; ``duplicates`` of them,
    spread evenly, are marked ``twin``: the client sends it twice at the same instant, on its own connection
    and on a second one with another client's token, so the two requests race."""
    modes = ("low", "high", "normal")
    per_client: list[list[dict]] = [[] for _ in range(clients)]
    dup_every = max(1, count // duplicates) if duplicates else 0
    made = 0
    for k in range(count):
        miner_id, _, cooling = miners[k % len(miners)]
        if k % 2 == 0 and cooling != "hydro":  # a hydro-cooled miner has no fans: POWER_MODE instead
            body = {"type": "SET_FAN", "params": {"percent": 35 + (k * 7 + run * 13) % 60}}
        else:
            body = {"type": "POWER_MODE", "params": {"mode": modes[(k // len(miners) + run) % 3]}}
        body |= {"targets": [miner_id], "dedupe_key": f"bench-r{run}-{k}"}
        twin = bool(dup_every) and k % dup_every == dup_every // 2 and made < duplicates
        made += twin
        per_client[k % clients].append({"k": k, "dup": False, "twin": twin, "body": body})
    return per_client


def propose_all(port: int, tokens: list[str], approver_token: str, per_client: list[list[dict]]):
    answers: list[dict] = []
    lock = threading.Lock()
    to_approve: queue.Queue = queue.Queue()
    approved: dict[int, int] = {}
    approve_503 = [0]
    barrier = threading.Barrier(len(per_client) + 1)

    def propose(api: Api, item: dict, start: threading.Barrier | None, out: list) -> None:
        if start is not None:
            start.wait()
        t = time.perf_counter()
        status, answer, unavailable = call_retrying(api, "POST", "/api/v1/commands/propose", item["body"])
        latency = (time.perf_counter() - t) * 1000
        out.append({**item, "status": status, "id": answer.get("id"), "state": answer.get("status"),
                    "tier": answer.get("risk_tier"), "ms": latency, "unavailable": unavailable,
                    "error": None if status in (200, 201) else answer})  # fmt: skip
        if answer.get("status") == "PENDING_APPROVAL":
            to_approve.put(answer["id"])

    def client(index: int, items: list[dict]):
        api = Api(port, tokens[index])
        twin_api = Api(port, tokens[(index + len(tokens) // 2) % len(tokens)])
        for a in (api, twin_api):
            a.call("GET", "/api/v1/commands?limit=1")  # connection and token warm
        barrier.wait()
        mine: list[dict] = []
        for item in items:
            if not item["twin"]:
                propose(api, item, None, mine)
                continue
            start = threading.Barrier(2)
            other = threading.Thread(target=propose, args=(twin_api, {**item, "dup": True}, start, mine))
            other.start()
            propose(api, item, start, mine)
            other.join()
        api.close()
        twin_api.close()
        with lock:
            answers.extend(mine)

    def approver():
        api = Api(port, approver_token)
        while True:
            pk = to_approve.get()
            if pk is None:
                break
            with lock:
                if pk in approved:
                    continue
                approved[pk] = 0
            status, _answer, unavailable = call_retrying(api, "POST", f"/api/v1/commands/{pk}/approve",
                                                        {"reason": "bench"})  # fmt: skip
            with lock:
                approved[pk] = status
                approve_503[0] += unavailable
        api.close()

    approvers = [threading.Thread(target=approver) for _ in range(2)]
    for t in approvers:
        t.start()
    threads = [threading.Thread(target=client, args=(i, items)) for i, items in enumerate(per_client)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.time()
    for t in threads:
        t.join()
    proposed_s = time.time() - started
    for _ in approvers:
        to_approve.put(None)
    for t in approvers:
        t.join()
    return started, proposed_s, answers, approved, approve_503[0]


def call_retrying(api: Api, method: str, path: str, body: dict) -> tuple[int, dict, int]:
    """As a well-behaved client: a 503 (the server's "database unavailable": no pooled connection within
    DB_POOL_TIMEOUT_S) is retried after its Retry-After (capped at 5 s), up to 30 times; returns the final
    answer and how many 503s it took."""
    unavailable = 0
    while True:
        status, answer = api.call(method, path, body)
        if status != 503 or unavailable >= 30:
            return status, answer, unavailable
        unavailable += 1
        time.sleep(min(5.0, float(api.last_retry_after or 1)))


def wait_final(prefix: str, timeout: float, stuck_s: float = 60) -> float:
    """When every command of the run is final (nan after ``timeout`` s, or ``stuck_s`` s without progress)."""
    from django.db import connection

    from commands.models import Command

    deadline, last, changed = time.time() + timeout, None, time.time()
    try:
        while time.time() < deadline and time.time() - changed < stuck_s:
            left = Command.objects.filter(dedupe_key__startswith=prefix).exclude(status__in=FINAL).count()
            if not left:
                return time.time()
            if left != last:
                last, changed = left, time.time()
            time.sleep(0.5)
    finally:
        connection.close()
    return float("nan")


class Activity(threading.Thread):
    """Samples the bench database's sessions every 100 ms: how many, how many running, how many waiting for
    the audit chain's advisory lock (pg_stat_activity wait_event 'advisory')."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        from urllib.parse import urlparse

        parsed = urlparse(url)
        self.name_db = parsed.path.lstrip("/")
        self.admin = parsed._replace(path="/postgres").geturl()
        self.samples: list[tuple[int, int, int]] = []
        self.holder: Counter = Counter()  # what the session holding the audit lock was doing, per sample
        self.blocked: Counter = Counter()  # (its statement, the blocking session's) when it waited for another
        self.stopping = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            while not self.stopping.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = %s",
                    [self.name_db],
                ).fetchall()
                active = sum(1 for r in rows if r[0] == "active")
                advisory = sum(1 for r in rows if r[1] == "Lock" and r[2] == "advisory")
                self.samples.append((len(rows), active, advisory))
                held = conn.execute(
                    "SELECT a.state, a.wait_event, left(a.query, 60), "
                    "(SELECT left(b.state || ': ' || b.query, 60) FROM pg_stat_activity b "
                    " WHERE b.pid = ANY(pg_blocking_pids(a.pid)) LIMIT 1) "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = %s",
                    [self.name_db],
                ).fetchall()
                for state, wait_event, query, blocker in held:
                    if blocker:
                        self.blocked[(query, blocker)] += 1
                    self.holder["app (idle in transaction)" if state == "idle in transaction" else
                                f"database ({wait_event or 'running'})"] += 1  # fmt: skip
                if not held:
                    self.holder["free"] += 1
                time.sleep(0.1)

    def deadlocks(self) -> int:
        """pg_stat_database's deadlock count of the bench database (each one costs deadlock_timeout, 1 s)."""
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [self.name_db]).fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> str:
        self.stopping.set()
        self.join(timeout=5)
        if not self.samples:
            return "no samples"
        total = [s[0] for s in self.samples]
        advisory = [s[2] for s in self.samples]
        for (query, blocker), count in self.blocked.most_common(3):
            print(f"      audit-lock holder blocked ({count} samples) in: {query!r} by {blocker!r}")
        n = sum(self.holder.values()) or 1
        holder = ", ".join(f"{k} {v / n:.0%}" for k, v in self.holder.most_common(5))
        return (
            f"sessions peak {max(total)} (mean {statistics.fmean(total):.1f}); waiting for the audit lock: "
            f"peak {max(advisory)}, mean {statistics.fmean(advisory):.1f}; the lock's holder: {holder}"
        )


def check(prefix: str, answers: list[dict], approved: dict[int, int], writes: list[dict], log_text: str) -> dict:
    from django.db import connection
    from django.db.models import Max, Min

    from commands.models import Command, CommandTarget
    from hashinsight.events.models import AuditEvent

    out: dict = {}
    try:
        out["answers"] = Counter(a["status"] for a in answers)
        errors = [a["error"] for a in answers if a["error"]]
        out["errors"] = errors[:3]
        out["unavailable"] = sum(a["unavailable"] for a in answers)
        out["bad_answers"] = [(a["status"], a["error"]) for a in answers if a["status"] not in (200, 201, 503)][:3]
        pair: dict[int, dict] = defaultdict(dict)
        for a in answers:
            pair[a["k"]]["dup" if a["dup"] else "first"] = a
        both = [p for p in pair.values() if "dup" in p]
        out["dup_same"] = sum(1 for p in both if p["dup"]["id"] is not None and p["dup"]["id"] == p["first"]["id"])
        out["dup_two"] = sum(1 for p in both if p["dup"]["id"] is not None and p["first"]["id"] is not None
                             and p["dup"]["id"] != p["first"]["id"])  # fmt: skip
        out["dup_one_created"] = sum(
            1 for p in both if sorted((p["dup"]["status"], p["first"]["status"])) == [200, 201]
        )
        out["approvals"] = Counter(approved.values())
        commands = Command.objects.filter(dedupe_key__startswith=prefix)
        out["commands"] = commands.count()
        out["by_status"] = dict(Counter(commands.values_list("status", flat=True)))
        out["tiers"] = dict(Counter(commands.values_list("risk_tier", flat=True)))
        ids = list(commands.values_list("pk", flat=True))
        refs = {f"command:{pk}": pk for pk in ids}
        dispatched = Counter(
            refs[r]
            for r in AuditEvent.objects.filter(event_type="command.dispatched", reference__in=list(refs)).values_list(
                "reference", flat=True
            )
        )
        with_time = set(commands.filter(dispatched_at__isnull=False).values_list("pk", flat=True))
        out["dispatched"] = len(with_time)
        out["dispatch_twice"] = sorted(pk for pk, n in dispatched.items() if n > 1)
        out["dispatched_no_event"] = sorted(with_time - set(dispatched))
        out["event_not_dispatched"] = sorted(set(dispatched) - with_time)
        span = commands.aggregate(first=Min("created_at"), last=Max("finished_at"))
        out["span"] = (span["first"], span["last"])
        # The ground truth: what the miners were told to do, against what the commands acknowledged "ok".
        expected = Counter()
        for c in commands.filter(targets__result_status="ok").values("pk", "command_type", "params", "targets__serial"):
            if c["command_type"] == "SET_FAN":
                expected[(c["targets__serial"], "set_fan", str(c["params"]["percent"]))] += 1
            else:
                expected[(c["targets__serial"], "power_mode", c["params"]["mode"])] += 1
        done = Counter((w["serial"], w["command"], str(w["parameter"])) for w in writes if w.get("ok", True))
        out["writes_refused"] = sum(1 for w in writes if not w.get("ok", True))
        out["writes"] = sum(done.values())
        out["writes_expected"] = sum(expected.values())
        out["writes_missing"] = sum((expected - done).values())
        out["writes_extra"] = sum((done - expected).values())
        out["targets_not_ok"] = CommandTarget.objects.filter(command__in=ids).exclude(result_status="ok").count()
        ran = Counter(int(m) for m in RAN.findall(log_text) if int(m) in set(ids))
        out["ran_twice"] = sorted(pk for pk, n in ran.items() if n > 1)
        out["ran"] = len(ran)
        from telemetry.models import EdgeDevice

        devices = {str(pk): slug for pk, slug in EdgeDevice.objects.values_list("pk", "site__slug")}
        out["by_device"] = dict(Counter(
            devices.get(actor, actor)
            for actor in AuditEvent.objects.filter(event_type="command.dispatched", reference__in=list(refs))
            .values_list("actor_id", flat=True)
        ))  # fmt: skip
        out["dispatched_to_set"] = commands.filter(dispatched_to__isnull=False).count()
        out["audit_events"] = AuditEvent.objects.filter(reference__in=list(refs)).count()
    finally:
        connection.close()
    return out


def verify() -> tuple[bool, int, float, dict | None]:
    from django.db import connection

    from hashinsight.events.audit import verify_chain

    try:
        t = time.perf_counter()
        result = verify_chain()
        return result.ok, result.count, time.perf_counter() - t, result.first_broken
    finally:
        connection.close()


def append_rate(threads: int, events: int) -> tuple[float, list[float]]:
    """events/s of ``audit_append`` by ``threads`` writers, one event per transaction."""
    from django.db import connection, transaction

    from hashinsight.events.audit import audit_append

    per = events // threads
    barrier = threading.Barrier(threads + 1)
    errors: list = []
    latencies: list[float] = []

    def writer(n: int):
        mine = []
        try:
            connection.ensure_connection()
            barrier.wait()
            for i in range(per):
                t = time.perf_counter()
                with transaction.atomic():
                    audit_append(event_type="bench.append", actor_type="system", actor_id="bench",
                                 reference=f"bench:{n}:{i}", payload={"writer": n, "i": i})  # fmt: skip
                mine.append((time.perf_counter() - t) * 1000)
        except Exception as exc:  # reported, not hidden
            errors.append(exc)
        finally:
            latencies.extend(mine)
            connection.close()

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"    {len(errors)} writer(s) failed, first: {errors[0]!r}")
    return per * threads / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duplicates", type=int, default=50)
    parser.add_argument("--miners", type=int, default=500)
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the collectors' poll interval (s)")
    parser.add_argument("--base-port", type=int, default=24028, help="the simulator's first miner port")
    parser.add_argument("--timeout", type=float, default=600, help="max seconds for a run's commands to finish")
    parser.add_argument("--audit-events", type=int, default=2000, help="events per append-rate measurement")
    parser.add_argument("--audit-runs", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_CMD_CONC_DATABASE_URL", DATABASE)
    env = stack_env(database_url)
    print(machine_line())
    setup(env, args.miners)
    from miners.models import Miner

    miners = list(Miner.objects.order_by("pk").values_list("pk", "serial", "model__cooling"))
    tokens = make_tokens(*(["owner"] * args.clients))
    (approver_token,) = make_tokens("admin")
    stack = Stack(env, list(SITES), poll_interval_s=args.poll_interval, base_port=args.base_port)
    summary = []
    try:
        stack.start()
        ready = stack.wait_edge_ready(timeout=180)
        print(f"stack up: uvicorn ×{stack.web_workers}, worker + housekeeping + beat, simulator {stack.plan.miners} "
              f"miners, {len(SITES)} collectors polling every {args.poll_interval:g} s; every miner reported after "
              f"{ready:.1f} s")  # fmt: skip
        print(f"{args.runs} runs × {args.commands} commands by {args.clients} clients (+{args.duplicates} "
              f"duplicates racing their originals), SET_FAN LOW / POWER_MODE MEDIUM, 2 approvers")  # fmt: skip
        for run in range(args.runs):
            prefix = f"bench-r{run}-"
            per_client = plan(miners, args.commands, args.clients, args.duplicates, run)
            writes_before = len(stack.writes())
            activity = Activity(database_url)
            deadlocks_before = activity.deadlocks()
            activity.start()
            started, proposed_s, answers, approved, approve_503 = propose_all(
                stack.port, tokens, approver_token, per_client
            )
            finished = wait_final(prefix, args.timeout)
            sessions = activity.stop()
            deadlocks = activity.deadlocks() - deadlocks_before
            time.sleep(1)  # the last acknowledgements' log lines
            writes = stack.writes()[writes_before:]
            log_text = "".join((WORK / f"collector-{s}.log").read_text(errors="replace") for s in SITES)
            found = check(prefix, answers, approved, writes, log_text)
            ok, count, verify_s, broken = verify()
            total_s = finished - started
            lat = sorted(a["ms"] for a in answers)
            row = {"deadlocks": deadlocks, "proposed_s": proposed_s, "total_s": total_s,
                   "rate": found["commands"] / total_s, "propose_p50": statistics.median(lat),
                   "propose_p95": percentile(lat, 95), "found": found, "chain_ok": ok, "chain": count,
                   "verify_s": verify_s}  # fmt: skip
            summary.append(row)
            clean = (not found["dispatch_twice"] and not found["dispatched_no_event"] and not found["ran_twice"]
                     and not found["writes_missing"] and not found["writes_extra"] and ok)  # fmt: skip
            print(f"run {run + 1}: {len(answers)} proposals in {proposed_s:.1f} s ({len(answers) / proposed_s:.0f}/s, "
                  f"latency p50 {row['propose_p50']:.0f} ms p95 {row['propose_p95']:.0f} ms), answers "
                  f"{dict(found['answers'])}; all {found['commands']} final after {total_s:.1f} s "
                  f"({row['rate']:.1f} commands/s)")  # fmt: skip
            print(f"    commands {found['by_status']}, tiers {found['tiers']}, approvals {dict(found['approvals'])}, "
                  f"per collector {found['by_device']}")  # fmt: skip
            print(f"    PostgreSQL deadlocks during the run: {deadlocks} (pg_stat_database; each aborts a transaction, "
                  f"which the API answers 503 'database unavailable')")  # fmt: skip
            print(f"    503 answers retried: {found['unavailable']} on proposals, {approve_503} on approvals; other "
                  f"errors {found['bad_answers']}")  # fmt: skip
            print(f"    racing pairs: {found['dup_same']} answered with one command "
                  f"({found['dup_one_created']} as 201 + 200), {found['dup_two']} with two commands")  # fmt: skip
            print(f"    database while it ran: {sessions}; audit events of these commands {found['audit_events']:,} "
                  f"→ {found['audit_events'] / total_s:.0f}/s over the run; dispatched_to set on "
                  f"{found['dispatched_to_set']}")  # fmt: skip
            print(f"    dispatched {found['dispatched']}: twice {len(found['dispatch_twice'])}, without audit event "
                  f"{len(found['dispatched_no_event'])}, event without dispatch {len(found['event_not_dispatched'])}; "
                  f"run by the edge {found['ran']} (twice {len(found['ran_twice'])}); simulator writes "
                  f"{found['writes']} done ({found['writes_refused']} refused by the firmware) for "
                  f"{found['writes_expected']} expected (missing {found['writes_missing']}, "
                  f"extra {found['writes_extra']}); targets not ok {found['targets_not_ok']}")  # fmt: skip
            print(f"    audit chain {'OK' if ok else 'BROKEN ' + str(broken)}: {count:,} events verified in "
                  f"{verify_s:.2f} s   => {'clean' if clean else 'PROBLEMS'}")  # fmt: skip
            if found["errors"]:
                print(f"    first errors: {found['errors']}")
    finally:
        stack.stop()
    if summary:
        keys = ("proposed_s", "total_s", "rate", "propose_p50", "propose_p95", "deadlocks")
        med = {k: statistics.median(r[k] for r in summary) for k in keys}
        print(f"\nmedian of {len(summary)} runs: proposals in {med['proposed_s']:.1f} s (p50 "
              f"{med['propose_p50']:.0f} ms, p95 {med['propose_p95']:.0f} ms), all final in {med['total_s']:.1f} s "
              f"= {med['rate']:.1f} commands/s; {med['deadlocks']:.0f} deadlocks")  # fmt: skip

    print(f"\naudit append rate (audit_append, one event per transaction, {args.audit_events} events, stack stopped):")
    rates: dict[int, list[float]] = defaultdict(list)
    waits: dict[int, list[float]] = defaultdict(list)
    for _ in range(args.audit_runs):
        for threads in (1, 4, 10):
            rate, latencies = append_rate(threads, args.audit_events)
            rates[threads].append(rate)
            waits[threads].extend(latencies)
    for threads, values in rates.items():
        lat = sorted(waits[threads])
        print(f"    {threads:2} thread(s): {', '.join(f'{v:,.0f}' for v in values)} events/s → median "
              f"{statistics.median(values):,.0f}/s ({statistics.median(values) / statistics.median(rates[1]):.2f} × 1 "
              f"thread); per append (transaction) p50 {statistics.median(lat):.1f} ms, "
              f"p95 {percentile(lat, 95):.1f} ms")  # fmt: skip
    ok, count, verify_s, broken = verify()
    print(f"    chain after: {'OK' if ok else 'BROKEN ' + str(broken)}, {count:,} events, verified in {verify_s:.2f} s "
          f"({count / verify_s:,.0f} events/s)")  # fmt: skip
    if not args.keep_db:
        from django.db import connections

        connections.close_all()
        drop_database(database_url)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
