"""Creates (idempotently) a demo farm: three sites in three time zones, zones, three hosting clients,
thousands of miners across real models, one user per role, a portfolio for the app customer, and a
few realistic open alerts (raised through the alert service, like the edge would)."""

from __future__ import annotations

import random
import secrets
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from hashinsight.accounts.models import User
from hashinsight.accounts.roles import Role
from miners.catalog import load_catalog
from miners.models import Miner, MinerModel, PortfolioEntry
from sites.models import Customer, Site, Zone
from sites.services import customer_add_contact, site_grant
from telemetry.models import Alert
from telemetry.rules import MESSAGES as RULE_MESSAGES
from telemetry.services import alert_raise, alerts_acknowledge

OFFLINE_MSG_ID = "offline_silent"  # the offline rule's message for a miner that sends nothing
SITES = [
    # slug, name, location, timezone, capacity kW, zones (name, kind, capacity kW, energy source)
    ("tx-permian", "Permian Basin, TX", "Midland, Texas, US", "America/Chicago", 30000,
     [("Building A", "building", 12000, "grid"), ("Building B", "building", 12000, "wind"),
      ("Container Yard", "container", 6000, "solar")]),
    ("no-kvaloya", "Kvaløya Hydro", "Tromsø, Norway", "Europe/Oslo", 20000,
     [("Hall 1", "room", 10000, "hydro"), ("Hall 2", "room", 10000, "hydro")]),
    ("py-itaipu", "Alto Paraná", "Hernandarias, Paraguay", "America/Asuncion", 25000,
     [("Container Row 1", "container", 8000, "hydro"), ("Container Row 2", "container", 8000, "hydro"),
      ("Power Block C", "power", 9000, "hydro")]),
]  # fmt: skip
CUSTOMERS = [
    ("northwind-hash", "Northwind Hash Ltd.", "billing@northwind.example", "0.0650", date(2024, 1, 1), None),
    ("aurora-digital", "Aurora Digital Mining", "ops@aurora.example", "0.0580", date(2024, 6, 1), date(2027, 5, 31)),
    ("kestrel-capital", "Kestrel Capital Partners", "finance@kestrel.example", "0.0720", date(2025, 3, 15), None),
]
# Common fleet models, by the catalog code, with their share of the fleet.
FLEET = [
    ("antminer-s21-200t", 30), ("antminer-s19j-pro-104t", 20), ("antminer-s19-xp-141t", 15),
    ("whatsminer-m50s-126t", 10), ("whatsminer-m30s-plus-100t", 10), ("avalon-a1246-90t", 8),
    ("antminer-s21-plus-hyd-338t", 5), ("antminer-s21-xp-270t", 7),
]  # fmt: skip
USERS = [
    ("owner", Role.OWNER),
    ("admin", Role.ADMIN),
    ("siteowner", Role.MINING_SITE_OWNER),
    ("client", Role.CLIENT),
    ("customer", Role.CUSTOMER),
    ("guest", Role.GUEST),
]
STATUS_WEIGHTS = [
    (Miner.Status.ACTIVE, 90),
    (Miner.Status.MAINTENANCE, 4),
    (Miner.Status.OFFLINE, 5),
    (Miner.Status.RETIRED, 1),
]


class Command(BaseCommand):
    help = "Load the demo farm (idempotent). --miners N scales the fleet, up to 100,000 for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--miners", type=int, default=2000, help="total miners wanted (default 2000)")
        parser.add_argument("--seed", type=int, default=7, help="random seed, for a repeatable farm")
        parser.add_argument("--no-identity", action="store_true", help="skip sealing IP/MAC (faster benchmarks)")
        parser.add_argument(
            "--no-models", action="store_true",
            help="skip training the demo's forecast models (tests and benchmarks that do not read forecasts; naive "
            "serves and its own backtest is made on first use)",
        )  # fmt: skip

    def handle(self, *args, miners: int, seed: int, no_identity: bool, no_models: bool = False, **options):
        if not 0 <= miners <= 100_000:
            raise CommandError("--miners must be between 0 and 100,000")
        rng = random.Random(seed)
        with transaction.atomic():
            load_catalog(MinerModel)  # normally done by migrate; cheap and idempotent
            sites = self._sites()
            customers = self._customers()
            created_users = self._users(sites, customers)
        added = self._miners(miners, sites, customers, rng, seal=not no_identity)
        alerts = self._alerts(sites)
        for line in self._commands():
            self.stdout.write(f"  {line}")
        from intelligence.market_demo import seed_demo_market, seed_demo_models

        for line in [*seed_demo_market(), *([] if no_models else seed_demo_models())]:
            self.stdout.write(f"  {line}")
        # The hosting business: a receiving-address pool first, so the demo's issued invoice gets its addresses.
        from hashinsight.billing.payments import seed_demo_pool
        from hashinsight.demo.billing_demo import seed_billing_demo

        self.stdout.write(f"  payment addresses: {seed_demo_pool()} added to the demo pool")
        for line in seed_billing_demo():
            self.stdout.write(f"  {line}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo farm ready: {len(sites)} sites, {Miner.objects.count():,} miners ({added:,} new), "
                f"{alerts} new alerts."
            )
        )
        self._report_credentials(created_users)

    def _sites(self) -> list[Site]:
        sites = []
        for slug, name, location, tz, capacity, zones in SITES:
            site, _ = Site.objects.get_or_create(
                slug=slug, defaults={"name": name, "location": location, "timezone": tz, "capacity_kw": capacity}
            )
            for zname, kind, zcap, source in zones:
                Zone.objects.get_or_create(
                    site=site, name=zname, defaults={"kind": kind, "capacity_kw": zcap, "energy_source": source}
                )
            sites.append(site)
        return sites

    def _customers(self) -> list[Customer]:
        out = []
        for slug, company, email, rate, start, end in CUSTOMERS:
            customer, _ = Customer.objects.get_or_create(
                slug=slug,
                defaults={
                    "company": company,
                    "email": email,
                    "hosting_rate_usd_per_kwh": Decimal(rate),
                    "contract_start": start,
                    "contract_end": end,
                },
            )
            out.append(customer)
        return out

    def _users(self, sites, customers) -> list[tuple[str, str, str]]:
        created = []
        for username, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                password = secrets.token_urlsafe(12)
                user = User(username=username, role=role, email=f"{username}@demo.hashinsight.local")
                user.set_password(password)
                user.save()
                created.append((username, role, password))
        site_grant(user=User.objects.get(username="siteowner"), site=sites[0], manage=True)
        customer_add_contact(user=User.objects.get(username="client"), customer=customers[0])
        customer_user = User.objects.get(username="customer")
        if not PortfolioEntry.objects.filter(user=customer_user).exists():
            for code, qty, price in (("antminer-s21-200t", 12, "0.055"), ("antminer-s19j-pro-104t", 30, "0.048")):
                model = MinerModel.objects.filter(code=code).first()
                if model:
                    PortfolioEntry.objects.create(
                        user=customer_user, model=model, quantity=qty, power_price_usd_per_kwh=Decimal(price)
                    )
        return created

    def _miners(self, wanted: int, sites, customers, rng: random.Random, *, seal: bool) -> int:
        existing = Miner.objects.count()
        if existing >= wanted:
            return 0
        models = {m.code: m for m in MinerModel.objects.filter(code__in=[c for c, _ in FLEET])}
        fleet = [(models[c], w) for c, w in FLEET if c in models]
        if not fleet:
            raise CommandError("The miner catalog is empty; run migrate first.")
        zones = {s.pk: list(s.zones.order_by("name")) for s in sites}
        batch, total = [], 0
        for n in range(existing, wanted):
            site = sites[n % len(sites)]
            zone_index = (n // len(sites)) % len(zones[site.pk])
            zone = zones[site.pk][zone_index]
            model = rng.choices([m for m, _ in fleet], weights=[w for _, w in fleet])[0]
            # About half the fleet is hosted for clients, the rest is self-mining.
            customer = customers[rng.randrange(len(customers))] if rng.random() < 0.5 else None
            slot_index = n // (len(sites) * len(zones[site.pk]))
            miner = Miner(
                site=site, zone=zone, customer=customer, model=model,
                serial=f"HI{n + 1:07d}", asset_tag=f"AT-{site.slug[:2].upper()}-{n + 1:07d}",
                rack=f"R{zone_index + 1}-{slot_index // 200:03d}", shelf=(slot_index // 10) % 20, slot=slot_index % 10,
                status=rng.choices([s for s, _ in STATUS_WEIGHTS], weights=[w for _, w in STATUS_WEIGHTS])[0],
                firmware=rng.choice(["Stock 2024.06", "Stock 2025.02", "BraiinsOS 24.09", "VNish 1.2.6"]),
                pool_url="stratum+tcp://pool.example:3333", pool_worker=f"{site.slug}.{n + 1}",
            )  # fmt: skip
            if seal:
                octets = (10, (n >> 16) & 255, (n >> 8) & 255, n & 255)
                miner.set_identity(
                    ip=".".join(map(str, octets)), mac=":".join(f"{b:02X}" for b in (2, 0, n >> 24 & 255, *octets[1:])),
                    username="root", password=secrets.token_urlsafe(9),
                )  # fmt: skip
            batch.append(miner)
            if len(batch) == 2000:
                Miner.objects.bulk_create(batch)
                total += len(batch)
                batch = []
        Miner.objects.bulk_create(batch)
        return total + len(batch)

    def _commands(self) -> list[str]:
        """Two commands, once, so /commands/ has something to show: a LOW fan change that runs without approval
        (the demo's collector carries it out and telemetry verifies it within a minute or two) and a HIGH pool
        change waiting for two approvers (sign in as owner and admin to approve it)."""
        from commands.models import Command
        from commands.services import command_propose
        from sites.selectors import manageable_site_list

        proposer = User.objects.filter(username="siteowner").first()
        if proposer is None or Command.objects.exists():
            return []
        site = manageable_site_list(user=proposer).order_by("pk").first()
        if site is None:
            return []
        active = list(
            Miner.objects.filter(site=site, status=Miner.Status.ACTIVE).order_by("pk").values_list("pk", flat=True)[:5]
        )
        if len(active) < 5:
            return []
        fan = command_propose(actor=proposer, type="SET_FAN", params={"percent": 70}, targets=active[:3]).command
        pool = command_propose(
            actor=proposer,
            type="POOL_SET",
            params={"url": "stratum+tcp://pool.example.com:3333", "worker": f"{site.slug}.backup"},
            targets=active[3:5],
        ).command
        return [f"commands: #{fan.pk} SET_FAN ({fan.status}), #{pool.pk} POOL_SET ({pool.status}) at {site.name}"]

    def _alerts(self, sites) -> int:
        """A few open alerts, once: offline miners, a hot zone, a failed fan; one already acknowledged."""
        if Alert.objects.exists():
            return 0
        raised = []
        offline = Miner.objects.filter(status=Miner.Status.OFFLINE).select_related("site").order_by("pk")[:5]
        now = timezone.now()
        for n, miner in enumerate(offline, start=1):
            # Worded as the real offline rule words a silent miner (its message id and English sentence), so
            # pages show it in the reader's language (telemetry.alert_messages).
            minutes = 15 * n
            last_seen = now - timedelta(minutes=minutes)
            params = {"minutes": str(minutes), "last_seen": last_seen.strftime("%Y-%m-%d %H:%M")}
            raised.append(
                alert_raise(
                    site=miner.site, miner=miner, alert_type="miner_offline", severity=Alert.Severity.CRITICAL,
                    message=RULE_MESSAGES[OFFLINE_MSG_ID].format(**params),
                    evidence={"offline_minutes": minutes, "last_seen": last_seen.isoformat(), "unit": "min",
                              "rack": miner.rack, "msg": {"id": OFFLINE_MSG_ID, "params": params}},
                )
            )  # fmt: skip
        hot_site = sites[0]
        zone = hot_site.zones.order_by("name").first()
        if zone is not None:
            raised.append(
                alert_raise(
                    site=hot_site, alert_type="zone_temperature", severity=Alert.Severity.WARNING,
                    message=f"{zone.name}: inlet air 38.5 °C for 20 minutes (limit 35 °C).",
                    evidence={"zone": zone.name, "inlet_temp_c": 38.5, "limit_c": 35},
                )
            )  # fmt: skip
        fan_miner = Miner.objects.filter(status=Miner.Status.ACTIVE).select_related("site").order_by("pk").first()
        if fan_miner is not None:
            raised.append(
                alert_raise(
                    site=fan_miner.site, miner=fan_miner, alert_type="fan_failure", severity=Alert.Severity.CRITICAL,
                    message=f"Fan 3 on {fan_miner.serial} at 0 RPM; chip temperature 91 °C.",
                    evidence={"fan": 3, "fan_rpm": 0, "temp_chip_max_c": 91},
                )
            )  # fmt: skip
        if raised:
            alerts_acknowledge(
                alert_ids=[raised[0].pk], actor=User.objects.get(username="admin"), note="Technician on the way."
            )
        return len(raised)

    def _report_credentials(self, created) -> None:
        path = Path(settings.VAR_DIR) / "demo-credentials.txt"
        if not created:
            self.stdout.write(
                f"Demo users already exist; their passwords are in {path} (if this machine created them)."
            )
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{u:<10} {role:<18} {pw}" for u, role, pw in created]
        with path.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.stdout.write(f"Demo users (shown once; also written to {path}):")
        for line in lines:
            self.stdout.write("  " + line)
