"""python -m edge.collector --config site.toml [--register CODE | --status | --once | --requeue-quarantined | --check |
--dump-inventory FILE]

Exit codes: 0 done, 1 failed (see the log), 2 configuration or credentials problem, 3 the server refused the
device token (revoked or rotated: enroll again with --register)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from pathlib import Path

from edge.collector import VERSION
from edge.collector.client import AuthRefused, Misconfigured, RequestRefused, Retryable, ServerClient
from edge.collector.config import ConfigError, load_config
from edge.collector.credentials import CredentialsError, load_credentials, save_credentials
from edge.collector.curtail import RestoreStore
from edge.collector.runner import EXIT_AUTH, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Collector
from edge.collector.spool import Spool, SpoolLocked

log = logging.getLogger("edge.collector")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edge.collector", description="HashInsight edge collector " + VERSION)
    p.add_argument("--config", required=True, help="the site's TOML config (see edge/README.md, Collector)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--register", metavar="CODE", help="exchange an enrollment code for this device's credentials")
    mode.add_argument("--status", action="store_true", help="print the spool and last push/poll state, then exit")
    mode.add_argument("--once", action="store_true", help="poll once, push (a few retries), report health, exit")
    mode.add_argument("--requeue-quarantined", action="store_true", help="send quarantined batches again")
    mode.add_argument("--check", action="store_true", help="validate the config (and credentials) and exit")
    mode.add_argument(
        "--dump-inventory",
        metavar="FILE",
        help="write the site's inventory (all pages) as JSON, e.g. for python -m edge.simulator --inventory FILE",
    )
    p.add_argument("--name", help="device name to register with (default: this host's name)")
    p.add_argument("--json", action="store_true", help="--status as JSON")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def _register(config, code: str, name: str | None) -> int:
    client = ServerClient(config.server_url, timeout=config.request_timeout_s)
    try:
        answer = asyncio.run(client.register(code.strip(), name or socket.gethostname()))
    except (AuthRefused, RequestRefused, Misconfigured) as exc:
        print(f"registration refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Retryable as exc:
        print(f"registration failed, the server did not answer: {exc}", file=sys.stderr)
        return EXIT_FAILED
    creds = save_credentials(config.credentials_path, answer, server_url=config.server_url)
    print(
        f"registered as device {creds.device_id} of site {creds.site_id}; credentials written to "
        f"{config.credentials_path} (mode 600). Start it with: python -m edge.collector --config {config.path}"
    )
    return EXIT_OK


def _status(config, as_json: bool) -> int:
    if not config.spool_path.exists():
        print(f"no spool yet at {config.spool_path} (the collector has not run)")
        return EXIT_OK
    spool = Spool.open_readonly(config.spool_path)
    try:
        meta = spool.all_meta()
        meta.pop("inventory", None)
        report = {"spool": str(config.spool_path), **spool.depth(), **meta, "quarantined": spool.quarantined()}
        report["curtail_restores"] = RestoreStore(spool.db).open_rows()
    finally:
        spool.close()
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    quarantined = report.pop("quarantined")
    restores = report.pop("curtail_restores")
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    for q in quarantined:
        print(f"quarantined batch {q['id']}: {q['kind']}, {q['items']} items from {q['oldest_ts']}: {q['last_error']}")
    for r in restores:
        error = f" ({r['last_error']})" if r["last_error"] else ""
        print(f"CURTAIL {r['command_id']} restore at {r['end_at']}: {r['state']}{error}")
    if report.get("auth_refused_at"):
        print(f"\nThe server refused the token at {report['auth_refused_at']}: enroll again with --register CODE.")
    return EXIT_OK


def _dump_inventory(config, creds, path: Path) -> int:
    client = ServerClient(config.server_url, creds.token, timeout=config.request_timeout_s)
    try:
        miners = asyncio.run(client.inventory())
    except AuthRefused as exc:
        print(f"the server refused the token: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except (Retryable, RequestRefused) as exc:
        print(f"inventory unavailable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"miners": miners}, indent=1), encoding="utf-8")
    print(f"{len(miners)} miners written to {path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.register:
        return _register(config, args.register, args.name)
    if args.status:
        return _status(config, args.json)
    try:
        creds = load_credentials(config.credentials_path, config_path=config.path)
    except CredentialsError as exc:
        print(f"credentials: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if creds.server_url and creds.server_url != config.server_url:
        log.warning(
            "the credentials were issued by %s but the config points at %s", creds.server_url, config.server_url
        )
    if args.dump_inventory:
        return _dump_inventory(config, creds, Path(args.dump_inventory))
    if args.check:
        print(f"config {config.path} is valid; credentials for device {creds.device_id} found")
        return EXIT_OK
    try:
        spool = Spool(
            config.spool_path, max_samples=config.spool_max_samples, max_quarantined=config.spool_max_quarantined
        )
    except SpoolLocked as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.requeue_quarantined:
            print(f"{spool.requeue_quarantined()} quarantined batch(es) queued again")
            return EXIT_OK
        client = ServerClient(config.server_url, creds.token, timeout=config.request_timeout_s)
        return asyncio.run(_run(config, client, spool, once=args.once))
    finally:
        spool.close()


async def _run(config, client: ServerClient, spool: Spool, *, once: bool) -> int:
    collector = Collector(config, client=client, spool=spool)
    if once:
        return await collector.run_once()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, collector.stop)
    code = await collector.run()
    if code == EXIT_AUTH:
        print("stopped: the server refused the device token; enroll again with --register CODE", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
