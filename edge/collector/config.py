"""site.toml: read with tomllib, checked key by key; every mistake is a ConfigError naming the key and the fix.

Relative paths (credentials, spool) are relative to the directory of the config file. Unknown keys are
errors, so a typo ("poll_intervall_s") is caught instead of silently using the default."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from edge.collector.sample import MinerSpec

ADAPTERS = ("cgminer", "pyasic")
INVENTORY_SOURCES = ("server", "static")
MAX_BATCH = 5000  # the ingest endpoint's limit per request


class ConfigError(ValueError):
    """The config file is missing, unreadable or wrong; the message says where and what to write instead."""


@dataclass(frozen=True)
class Config:
    path: Path
    server_url: str
    credentials_path: Path
    spool_path: Path
    inventory: str = "server"
    request_timeout_s: float = 30.0
    max_backoff_s: float = 300.0
    poll_interval_s: float = 60.0
    poll_timeout_s: float = 5.0
    concurrency: int = 64
    batch_size: int = 1000
    health_interval_s: float = 60.0
    inventory_refresh_s: float = 600.0
    overheat_c: float = 95.0
    spool_max_samples: int = 2_000_000
    spool_max_quarantined: int = 100
    default_adapter: str = "cgminer"
    cgminer_port: int = 4028
    simulator_base_port: int | None = None
    simulator_host: str = "127.0.0.1"
    simulator_ports: int | None = None
    miners: tuple[MinerSpec, ...] = field(default_factory=tuple)


# section -> {key: (kind, default)}; kinds: "str", "path", "url", "int", "float", "port"
_SECTIONS: dict[str, dict[str, tuple[str, object]]] = {
    "server": {
        "url": ("url", None),
        "credentials": ("path", "credentials.json"),
        "timeout_s": ("float", 30.0),
        "max_backoff_s": ("float", 300.0),
    },
    "collector": {
        "poll_interval_s": ("float", 60.0),
        "poll_timeout_s": ("float", 5.0),
        "concurrency": ("int", 64),
        "batch_size": ("int", 1000),
        "health_interval_s": ("float", 60.0),
        "inventory_refresh_s": ("float", 600.0),
        "overheat_c": ("float", 95.0),
    },
    "spool": {
        "path": ("path", "spool.sqlite3"),
        "max_samples": ("int", 2_000_000),
        "max_quarantined_batches": ("int", 100),
    },
    "adapters": {
        "default": ("str", "cgminer"),
        "cgminer_port": ("port", 4028),
        "simulator_base_port": ("port", None),
        "simulator_host": ("str", "127.0.0.1"),
        "simulator_ports": ("int", None),
    },
}
_MINER_KEYS = {"serial", "host", "port", "adapter", "model"}
_MINIMUMS = {
    ("server", "timeout_s"): 1,
    ("server", "max_backoff_s"): 1,
    ("collector", "poll_interval_s"): 1,
    ("collector", "poll_timeout_s"): 0.1,
    ("collector", "concurrency"): 1,
    ("collector", "batch_size"): 1,
    ("collector", "health_interval_s"): 5,
    ("collector", "inventory_refresh_s"): 10,
    ("spool", "max_samples"): 1,
    ("spool", "max_quarantined_batches"): 1,
    ("adapters", "simulator_ports"): 1,
}


def _value(where: str, kind: str, raw, base: Path):
    if kind == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{where} must be a non-empty string (got {raw!r})")
        return raw.strip()
    if kind == "path":
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{where} must be a file path (got {raw!r})")
        path = Path(raw).expanduser()
        return path if path.is_absolute() else base / path
    if kind == "url":
        parsed = urlparse(raw) if isinstance(raw, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f'{where} must be the server\'s http(s) URL, e.g. "https://hashinsight.example" (got {raw!r})'
            )
        return raw.rstrip("/")
    if kind in ("int", "port"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{where} must be a whole number (got {raw!r})")
        if kind == "port" and not 1 <= raw <= 65535:
            raise ConfigError(f"{where} must be a TCP port, 1–65535 (got {raw})")
        return raw
    if kind == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConfigError(f"{where} must be a number (got {raw!r})")
        return float(raw)
    raise AssertionError(kind)  # pragma: no cover


def _adapter(where: str, raw) -> str:
    if raw not in ADAPTERS:
        raise ConfigError(f"{where} must be one of {', '.join(ADAPTERS)} (got {raw!r})")
    return raw


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict, path: Path) -> Config:
    base = path.resolve().parent
    name = path.name
    known = {"inventory", "miners", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown top-level key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    values: dict = {}
    for section, keys in _SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: [{section}] must be a table")
        extra = sorted(set(table) - set(keys))
        if extra:
            raise ConfigError(f"{name}: unknown key(s) in [{section}]: {', '.join(extra)}; known: {', '.join(keys)}")
        for key, (kind, default) in keys.items():
            where = f"{name}: [{section}] {key}"
            if key not in table:
                if default is None and (section, key) == ("server", "url"):
                    raise ConfigError(f'{where} is required (the server\'s base URL, e.g. "http://127.0.0.1:8000")')
                values[(section, key)] = _value(where, kind, default, base) if default is not None else None
                continue
            value = _value(where, kind, table[key], base)
            minimum = _MINIMUMS.get((section, key))
            if minimum is not None and value < minimum:
                raise ConfigError(f"{where} must be at least {minimum} (got {value})")
            values[(section, key)] = value
    batch = values[("collector", "batch_size")]
    if batch > MAX_BATCH:
        raise ConfigError(
            f"{name}: [collector] batch_size must be at most {MAX_BATCH}, the server's limit (got {batch})"
        )
    if values[("collector", "poll_timeout_s")] >= values[("collector", "poll_interval_s")]:
        raise ConfigError(f"{name}: [collector] poll_timeout_s must be shorter than poll_interval_s")
    default_adapter = _adapter(f"{name}: [adapters] default", values[("adapters", "default")])

    inventory = data.get("inventory", "server")
    if inventory not in INVENTORY_SOURCES:
        raise ConfigError(
            f'{name}: inventory must be "server" (the site\'s miners from the server) or "static" '
            f"(the [[miners]] list) (got {inventory!r})"
        )
    miners = _miners(name, data.get("miners", []), default_adapter, values[("adapters", "cgminer_port")])
    if inventory == "static" and not miners:
        raise ConfigError(f'{name}: inventory = "static" needs at least one [[miners]] entry (serial, host, port)')

    return Config(
        path=path,
        server_url=values[("server", "url")],
        credentials_path=values[("server", "credentials")],
        request_timeout_s=values[("server", "timeout_s")],
        max_backoff_s=values[("server", "max_backoff_s")],
        poll_interval_s=values[("collector", "poll_interval_s")],
        poll_timeout_s=values[("collector", "poll_timeout_s")],
        concurrency=values[("collector", "concurrency")],
        batch_size=batch,
        health_interval_s=values[("collector", "health_interval_s")],
        inventory_refresh_s=values[("collector", "inventory_refresh_s")],
        overheat_c=values[("collector", "overheat_c")],
        spool_path=values[("spool", "path")],
        spool_max_samples=values[("spool", "max_samples")],
        spool_max_quarantined=values[("spool", "max_quarantined_batches")],
        default_adapter=default_adapter,
        cgminer_port=values[("adapters", "cgminer_port")],
        simulator_base_port=values[("adapters", "simulator_base_port")],
        simulator_host=values[("adapters", "simulator_host")],
        simulator_ports=values[("adapters", "simulator_ports")],
        inventory=inventory,
        miners=miners,
    )


def _miners(name: str, raw, default_adapter: str, default_port: int) -> tuple[MinerSpec, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{name}: miners must be an array of tables, written [[miners]]")
    out, seen = [], set()
    for i, entry in enumerate(raw, start=1):
        where = f"{name}: [[miners]] #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        extra = sorted(set(entry) - _MINER_KEYS)
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(_MINER_KEYS))}")
        if "serial" not in entry:
            raise ConfigError(f"{where}: serial is required (the miner's serial number as the server knows it)")
        serial = _value(f"{where} serial", "str", entry["serial"], Path())
        if serial in seen:
            raise ConfigError(f"{where}: serial {serial!r} is listed twice")
        seen.add(serial)
        if "host" not in entry:
            raise ConfigError(f"{where} ({serial}): host is required (the miner's IP address or name)")
        out.append(
            MinerSpec(
                serial=serial,
                host=_value(f"{where} host", "str", entry["host"], Path()),
                port=_value(f"{where} port", "port", entry.get("port", default_port), Path()),
                adapter=_adapter(f"{where} adapter", entry.get("adapter", default_adapter)),
                model=_value(f"{where} model", "str", entry["model"], Path()) if "model" in entry else None,
            )
        )
    return tuple(out)
