"""Day-ahead curtailment plans on the Django side: build the site's model from its miners, read the hourly prices
and hashprice, run ``intelligence.algorithms.optimizer.plan_curtailment``, store the plan with its inputs, and send
an approved-to-send plan to the control plane as ``CURTAIL`` commands.

Selectors (reads, scoped): ``plan_list``, ``plan_get``, ``day_plan`` (a day's job-made plan through the cache).
Services (writes): ``plan_create``, ``plan_send``,
``plan_for_day`` (the job's, cached under ``optimize:{site}:{date}``).

Who may do what: plans belong to the CURTAILMENT module (READ to read, FULL to create and send) and to a site:
a site the user does not see is a 404, one seen only through a read-only grant is a 403 ``site_read_only``
(``sites.selectors``, the same rules as commands).

The site's model (``site_model``): the site's hashing miners (status ACTIVE) grouped by (model, zone, hosting
client); each group's count, kW and TH/s per miner from its MinerModel's nameplate; zone capacities from
``Zone.capacity_kw`` unless the request overrides them.

Contract priority, until hosting contracts carry one (issue 10): the site's own miners are curtailed first
(priority 0), hosting clients' miners only after every own miner is off (priority 1). A request may set any order
with ``client_priority`` (``{"own": p, "<customer id>": p}``; higher is curtailed later).

Inputs from the database: hourly ``PowerPrice`` rows of the ``day_ahead`` market for the window (the mean of the
intervals within each hour); the hashprice per hour from the latest ``Forecast`` of the network hashprice (the day's
point, the last point after its end), else the latest ``MarketDay``'s hashprice repeated, else the shipped market
snapshot's. Hashprice is before pool fees, as the control plane's risk engine reads it.

A malformed or infeasible request is a ``DomainError`` (400) whose ``details.constraint`` names the input or the
constraint at fault; the optimizer's ``PlanError`` maps onto it one to one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from hashinsight.accounts.roles import Access, Module, has_access
from hashinsight.core import cache as cache_helper
from hashinsight.core.cache import register_builder
from hashinsight.core.errors import DomainError
from hashinsight.events.audit import audit_append
from intelligence.algorithms import optimizer
from intelligence.models import CurtailmentPlan, Forecast, ForecastTarget, MarketDay, PowerMarket, PowerPrice

MODULE = Module.CURTAILMENT
MIN_HOURS, MAX_HOURS = 24, optimizer.MAX_HORIZON_HOURS
MAX_TIME_LIMIT_S = 30.0
OWN = "own"  # the site's own miners in ``client_priority``
DEFAULT_PRIORITY = {OWN: 0, "client": 1}
SEND_MODES = ("hard", "soft")
P = CurtailmentPlan.Status


def _bad(code: str, constraint: str, message: str, *, status: int = 400, **details) -> DomainError:
    return DomainError(code, f"{constraint}: {message}", status=status, details={"constraint": constraint, **details})


def _from_plan_error(exc: optimizer.PlanError) -> DomainError:
    # solver_failed is the only one that is not the caller's fault: CBC found nothing within its time limit.
    status = 503 if exc.code == "solver_failed" else 400
    return DomainError(exc.code, str(exc), status=status, details={"constraint": exc.constraint, **exc.details})


# ---------------------------------------------------------------------------------------------------------
# Selectors


def plan_list(*, user) -> QuerySet[CurtailmentPlan]:
    """The plans of the sites ``user`` sees (none without READ on CURTAILMENT). One query."""
    from sites.selectors import site_list

    if not has_access(user, MODULE, Access.READ):
        return CurtailmentPlan.objects.none()
    return CurtailmentPlan.objects.filter(site__in=site_list(user=user)).select_related("site", "created_by")


def plan_get(*, user, plan_id: int) -> CurtailmentPlan:
    plan = plan_list(user=user).filter(pk=plan_id).first()
    if plan is None:
        raise DomainError("not_found", "Not found.", status=404)
    return plan


# The days a day plan may be asked for: no mining before the genesis block, and a year ahead bounds the cache's keys
# (day-ahead markets publish one day out).
FIRST_PLAN_DAY = date(2009, 1, 3)
PLAN_DAYS_AHEAD = 366


def day_plan_bounds(today: date | None = None) -> tuple[date, date]:
    """The first and last day ``day_plan`` is asked for (callers check the day they pass)."""
    return FIRST_PLAN_DAY, (today or timezone.now().date()) + timedelta(days=PLAN_DAYS_AHEAD)


def day_plan(*, user, site_id: int, day: date, build_on_miss: bool = True) -> cache_helper.Cached:
    """The site's plan for ``day`` (its local day) as the daily job makes it (``plan_for_day``: 24 hours, day-ahead
    prices, default constraints), read through the cache under ``optimize:{site}:{date}``: ``hit``; ``stale``, served
    while one rebuild is queued (after the site's prices or fleet changed, ``intelligence.plans_handlers``, or once
    the entry is older than the helper's freshness); ``miss``, built now (the stored plan when its inputs are
    unchanged, else a solve); ``bypass`` without a cache. The value is ``plan_for_day``'s: ``plan`` null with the
    refusal when no plan can be made. A site ``user`` does not see is a 404 (``not_found``), as for ``plan_get``.
    When cached, the site's scope is all it reads from the database (one query, two with per-site grants).
    ``build_on_miss=False``: a miss answers a null value at once and the plan is made in the background."""
    site = _site_for(user=user, site_id=site_id, write=False)
    return cache_helper.get("optimize", build_on_miss=build_on_miss, id=site.pk, date=day.isoformat())


def _site_for(*, user, site_id, write: bool):
    """The site, if ``user`` sees it (else 404); with ``write``, FULL on CURTAILMENT and a manage grant (else 403)."""
    from sites.selectors import require_site_manageable, site_list

    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise _bad("invalid", "site", "is a site id (a number)")
    site = site_list(user=user).filter(pk=site_id).first() if has_access(user, MODULE, Access.READ) else None
    if site is None:
        raise DomainError("not_found", "Not found.", status=404)
    if write:
        if not has_access(user, MODULE, Access.FULL):
            raise DomainError("permission_denied", "Your role may not make or send curtailment plans.", status=403)
        require_site_manageable(user=user, site_id=site.pk)
    return site


# ---------------------------------------------------------------------------------------------------------
# The site's model


@dataclass(frozen=True)
class GroupInfo:
    """A planned group and where its miners are: what the optimizer does not need but sending does."""

    id: str
    label: str
    model_id: int | None
    zone_id: int | None
    customer_id: int | None

    def as_dict(self) -> dict:
        return {
            "id": self.id, "label": self.label, "model_id": self.model_id, "zone_id": self.zone_id,
            "customer_id": self.customer_id,
        }  # fmt: skip


def group_id(model_id: int, zone_id: int, customer_id: int | None) -> str:
    return f"m{model_id}-z{zone_id}-{'c' + str(customer_id) if customer_id else OWN}"


def _priority(priorities: Mapping[str, int], customer_id: int | None) -> int:
    if customer_id is None:
        return priorities.get(OWN, DEFAULT_PRIORITY[OWN])
    return priorities.get(str(customer_id), DEFAULT_PRIORITY["client"])


def site_model(site, *, constraints: Mapping | None = None) -> tuple[optimizer.SiteModel, list[GroupInfo]]:
    """The site's hashing miners grouped by (model, zone, hosting client), with the request's constraints.
    Three queries whatever the fleet size (groups, zones, clients' names)."""
    from miners.models import Miner, MinerModel
    from sites.models import Customer, Zone

    c = dict(constraints or {})
    priorities = c.get("client_priority") or {}
    rows = list(
        Miner.objects.filter(site=site, status=Miner.Status.ACTIVE)
        .values("model_id", "zone_id", "customer_id")
        .annotate(n=Count("id"))
        .order_by("model_id", "zone_id", "customer_id")
    )
    if not rows:
        raise _bad("empty", "groups", "the site has no hashing miners to plan")
    models = {m.pk: m for m in MinerModel.objects.filter(pk__in={r["model_id"] for r in rows})}
    zones = {z.pk: z for z in Zone.objects.filter(site=site)}
    clients = dict(Customer.objects.filter(pk__in={r["customer_id"] for r in rows}).values_list("pk", "company"))
    groups, infos = [], []
    for r in rows:
        m, z = models[r["model_id"]], zones[r["zone_id"]]
        gid = group_id(m.pk, z.pk, r["customer_id"])
        groups.append(
            optimizer.MinerGroup(
                id=gid, model=m.name, count=r["n"], kw_each=float(m.power_w) / 1000, ths_each=float(m.hashrate_ths),
                zone=str(z.pk), client=str(r["customer_id"]) if r["customer_id"] else None,
                priority=_priority(priorities, r["customer_id"]),
            )
        )  # fmt: skip
        owner = clients.get(r["customer_id"], "") if r["customer_id"] else ""
        label = " · ".join(x for x in (m.name, z.name, owner) if x)
        infos.append(GroupInfo(gid, label, m.pk, z.pk, r["customer_id"]))
    used = {g.zone for g in groups}
    zone_caps = {str(z.pk): float(z.capacity_kw) for z in zones.values() if str(z.pk) in used}
    for zone, cap in (c.get("zone_capacity_kw") or {}).items():
        if str(zone) not in used:
            raise _bad("unknown", "zone_capacity_kw", f"no planned miner stands in zone {zone}", zone=str(zone))
        if cap is None:
            zone_caps.pop(str(zone), None)  # null: no capacity limit for this zone
        else:
            zone_caps[str(zone)] = cap
    model = optimizer.SiteModel(
        groups=tuple(groups),
        zone_capacity_kw=zone_caps,
        min_on_hours=c.get("min_on_hours", 0.0),
        min_off_hours=c.get("min_off_hours", 0.0),
        ramp_kw_per_hour=c.get("ramp_kw_per_hour"),
    )
    return model, infos


def _explicit_model(groups, constraints: Mapping) -> tuple[optimizer.SiteModel, list[GroupInfo]]:
    """Groups given in the request (integrations): plain numbers, no miners behind them (such a plan cannot be sent)."""
    if not isinstance(groups, list) or not groups:
        raise _bad("empty", "groups", "give a non-empty list of groups")
    made, infos = [], []
    for n, g in enumerate(groups):
        if not isinstance(g, dict):
            raise _bad("invalid", "groups", f"group {n} is not an object", group=n)
        unknown = set(g) - {"id", "model", "count", "kw_each", "ths_each", "zone", "client", "priority", "firm_count"}
        if unknown:
            raise _bad("unknown", "groups", f"group {n}: unknown keys {', '.join(sorted(unknown))}", group=n)
        gid = str(g.get("id") or f"g{n}")[:60]
        try:
            made.append(
                optimizer.MinerGroup(
                    id=gid, model=str(g.get("model") or gid)[:80], count=_int(g.get("count"), "groups"),
                    kw_each=_number(g.get("kw_each"), "groups"), ths_each=_number(g.get("ths_each"), "groups"),
                    zone=None if g.get("zone") is None else str(g["zone"]),
                    client=None if g.get("client") is None else str(g["client"]),
                    priority=_int(g.get("priority", 0), "groups"), firm_count=_int(g.get("firm_count", 0), "groups"),
                )
            )  # fmt: skip
        except DomainError as exc:
            exc.details["group"] = n
            raise
        infos.append(GroupInfo(gid, made[-1].model, None, None, None))
    caps = {}
    for zone, cap in (constraints.get("zone_capacity_kw") or {}).items():
        if cap is not None:
            caps[str(zone)] = cap
    model = optimizer.SiteModel(
        groups=tuple(made), zone_capacity_kw=caps,
        min_on_hours=constraints.get("min_on_hours", 0.0), min_off_hours=constraints.get("min_off_hours", 0.0),
        ramp_kw_per_hour=constraints.get("ramp_kw_per_hour"),
    )  # fmt: skip
    return model, infos


# ---------------------------------------------------------------------------------------------------------
# Prices and hashprice


def hourly_prices(site, start: datetime, hours: int) -> list[float]:
    """One day-ahead price (USD/MWh) per hour from ``start``: the mean of the site's intervals in that hour.
    A missing hour is a 400 naming the hours (a plan on made-up prices would be worse than none)."""
    end = start + timedelta(hours=hours)
    rows = (
        PowerPrice.objects.filter(site=site, market=PowerMarket.DAY_AHEAD, interval_start__gte=start,
                                  interval_start__lt=end)
        .values_list("interval_start", "usd_per_mwh")
    )  # fmt: skip
    sums: dict[int, list[Decimal]] = {}
    for at, price in rows:
        sums.setdefault(int((at - start).total_seconds() // 3600), []).append(price)
    missing = [h for h in range(hours) if h not in sums]
    if missing:
        first = start + timedelta(hours=missing[0])
        raise _bad(
            "missing_prices", "prices_usd_per_mwh",
            f"no day-ahead price for {len(missing)} of the {hours} hours (first: {first:%Y-%m-%d %H:%M} UTC)",
            missing_hours=missing[:48],
        )  # fmt: skip
    return [float(sum(sums[h]) / len(sums[h])) for h in range(hours)]


def has_prices(site, start: datetime, hours: int) -> bool:
    end = start + timedelta(hours=hours)
    qs = PowerPrice.objects.filter(site=site, market=PowerMarket.DAY_AHEAD, interval_start__gte=start,
                                   interval_start__lt=end)  # fmt: skip
    return qs.exists()


def market_hashprice() -> tuple[float, str]:
    """The latest MarketDay's hashprice (USD per TH/s per day, before pool fees), else the shipped snapshot's."""
    from intelligence.algorithms import hashprice as hp

    day = MarketDay.objects.order_by("-date").first()
    if day is not None and day.difficulty:
        fees = hp.fees_btc_per_block(day.fees_btc) if day.fees_btc is not None else Decimal(0)
        value = hp.hashprice_usd_per_th_day(day.btc_price_usd, day.difficulty, hp.block_subsidy_btc_on(day.date), fees)
        return float(value), f"market day {day.date}"
    from commands.services import hashprice_usd_per_th_day

    return float(hashprice_usd_per_th_day()), "shipped market snapshot"


def hourly_hashprice(start: datetime, hours: int) -> tuple[list[float], str]:
    """The hashprice per hour and where it came from (forecast #id, market day, snapshot)."""
    forecast = Forecast.objects.filter(target=ForecastTarget.HASHPRICE, subject="").order_by("-generated_at").first()
    points = {}
    if forecast is not None:
        for p in forecast.points or []:
            try:
                value = float(p["yhat"])
                day = date.fromisoformat(str(p["date"])[:10])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value) and value >= 0:
                points[day] = value
    if points:
        days = sorted(points)
        out = []
        for h in range(hours):
            d = (start + timedelta(hours=h)).date()
            before = [x for x in days if x <= d]
            out.append(points[before[-1]] if before else points[days[0]])
        return out, f"forecast #{forecast.pk} ({forecast.algorithm})"
    value, source = market_hashprice()
    return [value] * hours, source


# ---------------------------------------------------------------------------------------------------------
# Request parsing


def _number(value, constraint: str) -> float:
    if isinstance(value, bool) or value is None:
        raise _bad("not_finite", constraint, "is not a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _bad("not_finite", constraint, "is not a number") from None
    if not math.isfinite(out):
        raise _bad("not_finite", constraint, "is not a finite number")
    return out


def _int(value, constraint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("out_of_range", constraint, "is a whole number")
    return value


def _series(value, constraint: str, *, hours: int):
    """A number, or one per hour; NaN and text are refused here with the constraint's name."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != hours:
            raise _bad("length_mismatch", constraint, f"has {len(value)} values for {hours} hours")
        out = []
        for n, x in enumerate(value):
            try:
                out.append(_number(x, constraint))
            except DomainError as exc:
                exc.details["step"] = n
                raise
        return out
    return _number(value, constraint)


CONSTRAINT_KEYS = {
    "cap_kw", "curtail_pct", "min_on_hours", "min_off_hours", "ramp_kw_per_hour", "zone_capacity_kw",
    "client_priority",
}  # fmt: skip
BODY_KEYS = {
    "site", "start", "hours", "constraints", "prices_usd_per_mwh", "hashprice_usd_per_th_day", "groups",
    "time_limit_s", "gap_rel",
}  # fmt: skip


@dataclass(frozen=True)
class PlanRequest:
    site_id: int
    start: datetime
    hours: int
    constraints: dict
    prices: list | None  # explicit, else from the database
    hashprice: float | list | None
    groups: list | None
    time_limit_s: float
    gap_rel: float


def _start(value) -> datetime:
    if value is None:
        raise _bad("empty", "start", "is required (the first hour, ISO 8601, UTC unless an offset is given)")
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _bad("invalid", "start", "is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.minute or moment.second or moment.microsecond:
        raise _bad("out_of_range", "start", "must be on the hour")
    return moment


def parse_request(data) -> PlanRequest:
    """Check a plan request's shape; every refusal names the field or constraint (``details.constraint``)."""
    if not isinstance(data, Mapping):
        raise _bad("invalid", "body", "is a JSON object")
    unknown = set(data) - BODY_KEYS
    if unknown:
        raise _bad("unknown", sorted(unknown)[0], "is not a field of a plan request", fields=sorted(unknown))
    hours = data.get("hours", MIN_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int) or not MIN_HOURS <= hours <= MAX_HOURS:
        raise _bad("out_of_range", "hours", f"is a whole number of hours from {MIN_HOURS} to {MAX_HOURS}")
    site_id = data.get("site")
    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise _bad("invalid", "site", "is a site id (a number)")
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, Mapping):
        raise _bad("invalid", "constraints", "is an object")
    unknown = set(constraints) - CONSTRAINT_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise _bad("unknown", name, "is not a constraint", allowed=sorted(CONSTRAINT_KEYS))
    c = {}
    for key in ("cap_kw", "curtail_pct"):
        if constraints.get(key) is not None:
            c[key] = _series(constraints[key], key, hours=hours)
    for key in ("min_on_hours", "min_off_hours", "ramp_kw_per_hour"):
        if constraints.get(key) is not None:
            c[key] = _number(constraints[key], key)
    zones = constraints.get("zone_capacity_kw")
    if zones is not None:
        if not isinstance(zones, Mapping):
            raise _bad("invalid", "zone_capacity_kw", "is an object: zone id → kW (null: no limit)")
        c["zone_capacity_kw"] = {
            str(k): (None if v is None else _number(v, "zone_capacity_kw")) for k, v in zones.items()
        }
    prio = constraints.get("client_priority")
    if prio is not None:
        if not isinstance(prio, Mapping):
            raise _bad("invalid", "client_priority", 'is an object: "own" or a client id → priority')
        c["client_priority"] = {str(k): _int(v, "client_priority") for k, v in prio.items()}
    prices = data.get("prices_usd_per_mwh")
    if prices is not None:
        if not isinstance(prices, list):
            raise _bad("invalid", "prices_usd_per_mwh", "is a list, one price per hour")
        if not prices:
            raise _bad("empty", "prices_usd_per_mwh", "no prices")
        prices = _series(prices, "prices_usd_per_mwh", hours=hours)
    hashprice = data.get("hashprice_usd_per_th_day")
    if hashprice is not None:
        hashprice = _series(hashprice, "hashprice_usd_per_th_day", hours=hours)
    time_limit = _number(data.get("time_limit_s", optimizer.DEFAULT_TIME_LIMIT_S), "time_limit_s")
    if not 0 < time_limit <= MAX_TIME_LIMIT_S:
        raise _bad("out_of_range", "time_limit_s", f"is above 0 and at most {MAX_TIME_LIMIT_S:g} s")
    gap = _number(data.get("gap_rel", optimizer.DEFAULT_GAP_REL), "gap_rel")
    return PlanRequest(
        site_id=site_id, start=_start(data.get("start")), hours=hours, constraints=c, prices=prices,
        hashprice=hashprice, groups=data.get("groups"), time_limit_s=time_limit, gap_rel=gap,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Services


def _money(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the optimizer's totals are always decimal strings
        return Decimal(0)


def _solve(site, req: PlanRequest, *, reuse=None) -> tuple[dict, dict | None, CurtailmentPlan | None]:
    """The inputs (as stored) and the optimizer's result (``as_dict``). ``reuse(inputs)`` may name a stored plan
    made from the very same inputs; then the solver does not run and that plan is returned third.
    PlanError → DomainError naming the constraint."""
    try:
        if req.groups is not None:
            model, infos = _explicit_model(req.groups, req.constraints)
        else:
            model, infos = site_model(site, constraints=req.constraints)
        prices = req.prices if req.prices is not None else hourly_prices(site, req.start, req.hours)
        price_source = "request" if req.prices is not None else "day_ahead"
        if req.hashprice is not None:
            hashprice, hp_source = req.hashprice, "request"
        else:
            hashprice, hp_source = hourly_hashprice(req.start, req.hours)
        inputs = {
            "start": _iso(req.start),
            "hours": req.hours,
            "prices_usd_per_mwh": list(prices),
            "price_source": price_source,
            "hashprice_usd_per_th_day": hashprice if isinstance(hashprice, list) else [hashprice] * req.hours,
            "hashprice_source": hp_source,
            "groups": [
                {**info.as_dict(), "model": g.model, "count": g.count, "kw_each": g.kw_each, "ths_each": g.ths_each,
                 "zone": g.zone, "client": g.client, "priority": g.priority, "firm_count": g.firm_count}
                for info, g in zip(infos, model.groups, strict=True)
            ],
            "explicit_groups": req.groups is not None,
            "zone_capacity_kw": dict(model.zone_capacity_kw),
            "constraints": req.constraints,
            "time_limit_s": req.time_limit_s,
            "gap_rel": req.gap_rel,
        }  # fmt: skip
        if reuse is not None:
            found = reuse(inputs)
            if found is not None:
                return inputs, None, found
        result = optimizer.plan_curtailment(
            model, prices, hashprice, cap_kw=req.constraints.get("cap_kw"),
            curtail_pct=req.constraints.get("curtail_pct"), time_limit_s=req.time_limit_s, gap_rel=req.gap_rel,
        )  # fmt: skip
    except optimizer.PlanError as exc:
        raise _from_plan_error(exc) from None
    return inputs, result.as_dict(), None


def _store(site, inputs: dict, data: dict, *, actor) -> CurtailmentPlan:
    solver = data.pop("solver")
    plan = CurtailmentPlan.objects.create(
        site=site, starts_at=datetime.fromisoformat(inputs["start"].replace("Z", "+00:00")), hours=inputs["hours"],
        inputs=inputs, result=data, solver=solver,
        profit_usd=_money(data["plan"]["total_profit_usd"]),
        run_all_profit_usd=_money(data["run_all"]["total_profit_usd"]),
        threshold_profit_usd=_money(data["threshold"]["total_profit_usd"]),
        created_by=actor,
    )  # fmt: skip
    audit_append(
        event_type="curtailment_plan.created", actor_type="user" if actor is not None else "system",
        actor_id=getattr(actor, "pk", None), reference=f"curtailment_plan:{plan.pk}",
        payload={"plan_id": plan.pk, "starts_at": inputs["start"], "hours": plan.hours,
                 "profit_usd": plan.profit_usd, "solver_status": solver.get("status")},
        site=site,
    )  # fmt: skip
    return plan


def plan_create(*, actor, data) -> CurtailmentPlan:
    """Make and store a plan from a request body (``parse_request``), for a site ``actor`` manages."""
    req = parse_request(data)
    site = _site_for(user=actor, site_id=req.site_id, write=True)
    inputs, result, _ = _solve(site, req)  # the solver runs outside any transaction
    with transaction.atomic():
        return _store(site, inputs, result, actor=actor)


def day_window(site, day: date) -> datetime:
    """The first hour of ``day`` in the site's time zone, in UTC (a plan covers the 24 hours from it)."""
    tz = ZoneInfo(getattr(site, "timezone", "UTC") or "UTC")
    return datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)


def plan_for_day(*, site_id: int, day: date) -> dict:
    """The day's plan for a site (24 hours from its local midnight, day-ahead prices, default constraints): the
    job-made plan of that day when its inputs are unchanged (idempotent: no solve, no new row), else a new one,
    superseding the earlier job-made drafts of that day. Returns ``{"site", "date", "plan"}`` (the plan as the API
    shows it), or ``plan: null`` with the refusal (no prices, infeasible) in ``error_code``, ``message``,
    ``details``. Cached as ``optimize:{site}:{date}``."""
    from sites.models import Site

    site = Site.objects.get(pk=site_id)
    start = day_window(site, day)
    req = PlanRequest(
        site_id=site.pk, start=start, hours=24, constraints={}, prices=None, hashprice=None, groups=None,
        time_limit_s=optimizer.DEFAULT_TIME_LIMIT_S, gap_rel=optimizer.DEFAULT_GAP_REL,
    )  # fmt: skip
    head = {"site": site.pk, "date": day.isoformat()}
    same_day = CurtailmentPlan.objects.filter(
        site=site, starts_at=start, hours=24, created_by__isnull=True, inputs__job=True
    ).exclude(status__in=[P.SUPERSEDED, P.FAILED])

    def reuse(inputs):
        wanted = {**inputs, "job": True}
        return next((p for p in same_day.order_by("-pk") if p.inputs == wanted), None)

    try:
        inputs, result, existing = _solve(site, req, reuse=reuse)
    except DomainError as exc:
        return {**head, "plan": None, "error_code": exc.code, "message": exc.message, "details": exc.details}
    if existing is not None:
        return {**head, "plan": plan_body(existing)}
    inputs["job"] = True
    with transaction.atomic():
        same_day.filter(status=P.DRAFT).update(status=P.SUPERSEDED)
        plan = _store(site, inputs, result, actor=None)
    return {**head, "plan": plan_body(plan)}


@register_builder("optimize")
def build_optimize(*, id, date):  # the seed's key parts are named id and date
    return plan_for_day(site_id=int(id), day=date if not isinstance(date, str) else _date(date))


def _date(value: str) -> date:
    return date.fromisoformat(value)


# ---------------------------------------------------------------------------------------------------------
# The plan as the API, the pages and the cache show it


def plan_body(plan: CurtailmentPlan, *, full: bool = True) -> dict:
    """Plain JSON: money as decimal strings, times in UTC ISO 8601. ``full`` adds inputs, result and commands."""
    body = {
        "id": plan.pk,
        "site": plan.site_id,
        "status": plan.status,
        "starts_at": _iso(plan.starts_at),
        "hours": plan.hours,
        "profit_usd": None if plan.profit_usd is None else str(plan.profit_usd),
        "run_all_profit_usd": None if plan.run_all_profit_usd is None else str(plan.run_all_profit_usd),
        "threshold_profit_usd": None if plan.threshold_profit_usd is None else str(plan.threshold_profit_usd),
        "solver": plan.solver,
        "created_by": plan.created_by_id,
        "created_at": _iso(plan.created_at),
        "sent_at": None if plan.sent_at is None else _iso(plan.sent_at),
    }
    if full:
        body["inputs"] = plan.inputs
        body["result"] = plan.result
        body["commands"] = sorted(plan.commands.values_list("pk", flat=True)) if plan.pk else []
    return body


# ---------------------------------------------------------------------------------------------------------
# Sending


@dataclass(frozen=True)
class Block:
    """A run of consecutive hours in which one group has the same number of miners off."""

    group_index: int
    group_id: str
    first_hour: int
    end_hour: int  # exclusive
    off: int
    kw: float

    def dedupe_key(self, plan_id: int) -> str:
        return f"curtailment-plan:{plan_id}:g{self.group_index}:h{self.first_hour}-{self.end_hour}"


def plan_blocks(plan: CurtailmentPlan) -> list[Block]:
    """Every group's runs of equal, non-zero curtailment (miners off = count − on-count), in hour order.
    A run whose count of miners off changes is split there, so each command asks for exactly what the plan cuts."""
    on_counts = plan.result.get("plan", {}).get("on_counts", {})
    blocks = []
    for i, g in enumerate(plan.inputs.get("groups", [])):
        off = [g["count"] - int(n) for n in on_counts.get(g["id"], [])]
        t = 0
        while t < len(off):
            if off[t] <= 0:
                t += 1
                continue
            end = t
            while end < len(off) and off[end] == off[t]:
                end += 1
            blocks.append(Block(i, g["id"], t, end, off[t], round(off[t] * g["kw_each"], 3)))
            t = end
    return sorted(blocks, key=lambda b: (b.first_hour, b.group_index))


def _least_efficient(group: dict, site_id: int, n: int) -> list[int]:
    """The group's ``n`` hashing miners with the highest J/TH by their live readings (nameplate when unknown;
    miners of one model differ only in wear), ties by id."""
    from miners.models import Miner
    from telemetry.models import LiveStatus

    ids = list(
        Miner.objects.filter(
            site_id=site_id, model_id=group["model_id"], zone_id=group["zone_id"], customer_id=group["customer_id"],
            status=Miner.Status.ACTIVE,
        ).order_by("pk").values_list("pk", flat=True)
    )  # fmt: skip
    nominal = group["kw_each"] * 1000 / group["ths_each"] if group["ths_each"] else 0.0
    live = {
        m: (w / (ghs / 1000) if w and ghs else nominal)
        for m, w, ghs in LiveStatus.objects.filter(miner_id__in=ids).values_list("miner_id", "power_w", "hashrate_ghs")
    }
    ids.sort(key=lambda m: (-live.get(m, nominal), m))
    return ids[:n]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plan_send(*, plan: CurtailmentPlan, actor, mode: str = "hard") -> tuple[CurtailmentPlan, list, list[dict]]:
    """Propose the plan's ``CURTAIL`` commands through ``commands.services.command_propose``: one per block
    (``plan_blocks``), its targets the group's least efficient miners for the kW the block cuts, its window the
    block's hours, its dedupe key the plan's and the block's. Blocks already linked to the plan, and blocks whose
    window has ended, are skipped, so sending again changes nothing; blocks starting 7 days or more from now (the
    control plane's horizon) are left for a later send. All or nothing: a refusal of one command
    (safety guards, scope) rolls back the others. The control plane's risk engine and approvers decide the rest.

    ``mode``: ``hard`` (default: the plan switches miners off) or ``soft`` (the edge throttles the same miners
    first and stops them only for what throttling does not save). Returns the plan, the commands linked to it,
    and one line per block (``proposed``, ``already_sent``, ``ended``, ``later``, ``no_miners``)."""
    from commands.services import MAX_TTL, command_propose

    if mode not in SEND_MODES:
        raise _bad("invalid_choice", "mode", f"is one of {', '.join(SEND_MODES)}")
    _site_for(user=actor, site_id=plan.site_id, write=True)
    if plan.inputs.get("explicit_groups"):
        raise DomainError(
            "plan_not_sendable", "This plan was made from groups given in the request: no miners stand behind them.",
            status=409,
        )  # fmt: skip
    if plan.status not in (P.DRAFT, P.SENT):
        raise DomainError("plan_not_sendable", f"A {plan.get_status_display()} plan cannot be sent.", status=409)
    now = timezone.now()
    lines = []
    with transaction.atomic():
        plan = CurtailmentPlan.objects.select_for_update().get(pk=plan.pk)
        linked = {c.dedupe_key: c for c in plan.commands.all()}
        groups = plan.inputs["groups"]
        for block in plan_blocks(plan):
            key = block.dedupe_key(plan.pk)
            start = plan.starts_at + timedelta(hours=block.first_hour)
            end = plan.starts_at + timedelta(hours=block.end_hour)
            line = {"group": block.group_id, "start": _iso(start), "end": _iso(end), "miners_off": block.off,
                    "kw": block.kw, "dedupe_key": key}  # fmt: skip
            if key in linked:
                lines.append({**line, "result": "already_sent", "command": linked[key].pk})
                continue
            if end <= now:
                lines.append({**line, "result": "ended", "command": None})
                continue
            if start >= now + MAX_TTL:  # the control plane takes curtailments starting within 7 days: send again later
                lines.append({**line, "result": "later", "command": None})
                continue
            targets = _least_efficient(groups[block.group_index], plan.site_id, block.off)
            if not targets:
                lines.append({**line, "result": "no_miners", "command": None})
                continue
            kw = min(block.kw, len(targets) * groups[block.group_index]["kw_each"])
            proposed = command_propose(
                actor=actor, type="CURTAIL", targets=targets, site_id=plan.site_id, dedupe_key=key,
                params={"kw": round(kw, 3), "start": _iso(start), "end": _iso(end), "mode": mode},
            )  # fmt: skip
            plan.commands.add(proposed.command)
            linked[key] = proposed.command
            lines.append({**line, "result": "proposed", "command": proposed.command.pk, "targets": len(targets)})
        if plan.status != P.SENT:
            plan.status, plan.sent_at = P.SENT, now
            plan.save(update_fields=["status", "sent_at"])
            audit_append(
                event_type="curtailment_plan.sent", actor_type="user", actor_id=actor.pk,
                reference=f"curtailment_plan:{plan.pk}",
                payload={"plan_id": plan.pk, "commands": sorted(c.pk for c in linked.values()), "mode": mode},
                site=plan.site_id,
            )  # fmt: skip
    return plan, sorted(linked.values(), key=lambda c: c.pk), lines
