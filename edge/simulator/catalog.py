"""The simulator's model catalog: edge/data/asic_models.csv (a copy of the server's, see edge/data/PROVENANCE.md)
turned into hardware profiles: nominal TH/s and W, cooling, chains, chips, fans, firmware dialect."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

CATALOG_CSV = Path(__file__).resolve().parent.parent / "data" / "asic_models.csv"

# The demo farm's fleet mix (hashinsight/demo seed_demo.FLEET, copied): used when no inventory is given.
DEFAULT_MIX = [
    ("antminer-s21-200t", 30),
    ("antminer-s19j-pro-104t", 20),
    ("antminer-s19-xp-141t", 15),
    ("whatsminer-m50s-126t", 10),
    ("whatsminer-m30s-plus-100t", 10),
    ("avalon-a1246-90t", 8),
    ("antminer-s21-plus-hyd-338t", 5),
    ("antminer-s21-xp-270t", 7),
]


def slugify(value: str) -> str:
    """Django's slugify (allow_unicode=False), re-implemented so that edge/ needs no Django."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def model_code(model: str, hashrate_ths: Decimal) -> str:
    """The server catalog's code for a (model, TH/s) bin (same rule as miners/catalog.py)."""
    hashrate = hashrate_ths.quantize(Decimal("0.01"))
    return slugify(f"{model.replace('+', ' plus')}-{hashrate.normalize():f}t".replace(".", "-"))


@dataclass(frozen=True)
class Profile:
    """What the simulator needs to know about a model."""

    code: str
    vendor: str
    name: str
    nominal_ths: float
    nominal_w: float
    cooling: str  # air | hydro | immersion
    chains: int
    chips_per_chain: int
    fans: int  # 0 for hydro and immersion units
    fan_max_rpm: int
    temp_limit_c: float  # chip temperature at which the firmware stops hashing
    dialect: str  # antminer | whatsminer | avalon: which vendor flavour the API answers in

    @property
    def reports_power(self) -> bool:
        """Antminer firmware reports "chain_power" in stats, Whatsminer "Power" in summary; Avalon and others here
        report none (the collector then sends power_w = null)."""
        return self.dialect in ("antminer", "whatsminer")


_VENDOR = {
    # dialect, default fans (air), max fan rpm, default chips per chain
    "Bitmain": ("antminer", 4, 6000, 108),
    "MicroBT": ("whatsminer", 2, 7000, 156),
    "Canaan": ("avalon", 2, 6800, 120),
}
_TEMP_LIMIT = {"air": 95.0, "hydro": 85.0, "immersion": 85.0}


def _profile(row: dict) -> Profile:
    hashrate = Decimal(row["hashrate_ths"])
    dialect, fans, fan_max, chips = _VENDOR.get(row["manufacturer"], ("avalon", 2, 6000, 100))
    cooling = row["cooling"] or "air"
    note = row.get("note") or ""
    if m := re.search(r"(\d+)\s*chips", note):
        chips = int(m.group(1))
    if m := re.search(r"(\d+)\s*fans", note):
        fans = int(m.group(1))
    if cooling != "air":
        fans = 0
    return Profile(
        code=model_code(row["model"], hashrate),
        vendor=row["manufacturer"],
        name=row["model"],
        nominal_ths=float(hashrate),
        nominal_w=float(row["power_w"]),
        cooling=cooling,
        chains=3,
        chips_per_chain=chips,
        fans=fans,
        fan_max_rpm=fan_max,
        temp_limit_c=_TEMP_LIMIT.get(cooling, 95.0),
        dialect=dialect,
    )


def load_catalog(path: Path = CATALOG_CSV) -> dict[str, Profile]:
    """code → Profile, one per (manufacturer, model, TH/s) bin; where a bin repeats, the first row wins."""
    profiles: dict[str, Profile] = {}
    seen: set[tuple] = set()
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = (row["manufacturer"], row["model"], Decimal(row["hashrate_ths"]).quantize(Decimal("0.01")))
            if key in seen:
                continue
            seen.add(key)
            profile = _profile(row)
            profiles.setdefault(profile.code, profile)
    return profiles
