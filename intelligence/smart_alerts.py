"""Smart alerts (the seed's three): a network forecast that missed, profit down more than 10 % week on week, and
a hashrate anomaly. They go through the telemetry alert service (``telemetry.services.alerts_raise``): one open
alert per type and subject, a repeat counts onto it, and it is resolved when the condition clears.

**Forecast error** (``forecast_error``). Per network target (BTC price, difficulty, hashprice): the newest stored
network forecast whose first ``SMART_ALERT_FORECAST_MIN_DAYS`` (7) days are now market days is scored against
those days; its MAPE above ``SMART_ALERT_FORECAST_MAPE_PCT`` (15 %) holds. A forecast made more than its horizon
ago says nothing about the service now, so a target with no such forecast is not decided (an open alert stays).
An alert belongs to a site (``Alert.site`` is required, and the alert pages and sockets are scoped by site): the
network forecast serves every site's planning and revenue, so the alert is raised at every site, one per site and
target (its key ``<site>:-:forecast_error:<target>``), and every one resolves together when the error is back under
the threshold. It carries no hosting client: a client's view is its own miners' alerts.

**Profit down** (``roi_down``). Per site and per hosting client with an active miner: the profit of the last 7
market days against the 7 before, from the ROI attribution (``intelligence.roi``: measured from telemetry where it
covers the miners, else modelled), holds when it fell more than ``SMART_ALERT_ROI_DROP_PCT`` (10 %). Its message
names the attribution's biggest negative part (BTC price, difficulty, offline rate, power price, or fees and the
rest). Profit change stands for ROI change: ROI is profit ÷ capex, and capex is the same in both weeks. A week
before with no profit (≤ 0) gives no percentage: not a drop we can state, so it does not hold. A site's alert is
the operator's (no client on it); a client's carries ``customer`` so the client sees it, at the site hosting most
of its miners (key ``customer:<id>:-:roi_down``: one per client wherever its miners stand), priced at its hosting
rate like the client's revenue forecast.

The same run records the fleet's profit change (all sites, the same two weeks) for ``/api/health``'s roi_drift.

**Hashrate anomaly** (``anomaly_hashrate``) is the anomaly scan's (``intelligence.anomaly_scan``, every 5 minutes,
per miner): nothing to add here.

Messages are stored in English (``MESSAGES``) with their id and parameters in ``evidence["msg"]``, the way the
telemetry rules do; until ``telemetry.alert_messages.CATALOG`` holds these ids, pages show the stored English."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from telemetry.services import AlertToRaise

log = logging.getLogger(__name__)

FORECAST_ERROR = "forecast_error"
ROI_DOWN = "roi_down"
HASHRATE_ANOMALY = "anomaly_hashrate"  # raised by intelligence.anomaly_scan
WEEK_DAYS = 7

TARGET_WORDS = {"btc_price": "BTC price", "difficulty": "difficulty", "hashprice": "hashprice"}
FACTOR_WORDS = {
    "btc_price": "BTC price",
    "difficulty": "difficulty",
    "offline_rate": "offline rate",
    "power_price": "power price",
    "fees_residual": "fees and the rest",
}
# English as stored; telemetry.alert_messages.CATALOG must read the same (its %(name)s form).
MESSAGES = {
    **{
        f"forecast_error_{t}": (
            f"The {word} forecast made on {{origin}} missed by {{mape}} % (MAPE over {{days}} realised days), above "
            "{threshold} %."
        )
        for t, word in TARGET_WORDS.items()
    },
    **{
        f"roi_down_{f}": (
            f"Profit over the last {{days}} days ({{after}} USD) is {{pct}} % below the {{days}} days before "
            f"({{before}} USD); the biggest factor: {word} ({{part}} USD)."
        )
        for f, word in FACTOR_WORDS.items()
    },
}
RESOLVED_NOTES = {
    FORECAST_ERROR: "The forecast error is back under the threshold.",
    ROI_DOWN: "Profit is no longer down more than the threshold week on week.",
}


def forecast_mape_threshold() -> float:
    return float(getattr(settings, "SMART_ALERT_FORECAST_MAPE_PCT", 15))


def forecast_min_days() -> int:
    return int(getattr(settings, "SMART_ALERT_FORECAST_MIN_DAYS", 7))


def roi_drop_threshold() -> float:
    return float(getattr(settings, "SMART_ALERT_ROI_DROP_PCT", 10))


@dataclass(frozen=True)
class SubjectAlert(AlertToRaise):
    """An alert about a subject rather than a miner: its dedupe key names the subject, so a site holds one open
    alert per (type, subject) — several targets' forecast errors, several clients' profit drops."""

    key: str = ""

    @property
    def dedupe_key(self) -> str:
        return self.key


def _message(msg_id: str, **params: str) -> tuple[str, dict]:
    return MESSAGES[msg_id].format(**params), {"id": msg_id, "params": params}


def _fmt(value, digits: int = 1) -> str:
    return f"{float(value):,.{digits}f}"


# --- forecast error ------------------------------------------------------------------------------------------------


def realised_error(target: str, *, frame=None) -> dict | None:
    """The newest network forecast of ``target`` with at least ``forecast_min_days`` realised days, scored: its
    origin, the days compared and the MAPE (%); None when no forecast qualifies."""
    from intelligence import forecasting
    from intelligence.models import Forecast

    frame = forecasting.network_frame() if frame is None else frame
    actual = frame[forecasting.COLUMN[target]]
    latest = actual.index[-1].date()
    need = forecast_min_days()
    candidates = Forecast.objects.filter(
        target=target, subject=forecasting.NETWORK, origin__lte=latest - timedelta(days=need),
        origin__gte=latest - timedelta(days=90),
    ).order_by("-origin", "-generated_at", "-pk")  # fmt: skip
    by_day = {d.date().isoformat(): float(v) for d, v in actual.iloc[-120:].items()}
    for fc in candidates[:5]:
        if (latest - fc.origin).days > fc.horizon_days:
            continue  # every point realised long ago: a forecast that old says nothing about the service now
        pairs = [(p["yhat"], by_day[p["date"]]) for p in fc.points if p["date"] in by_day and by_day[p["date"]]]
        if len(pairs) < need:
            continue
        mape = sum(abs(f - a) / abs(a) for f, a in pairs) / len(pairs) * 100
        return {"forecast_id": fc.pk, "origin": fc.origin.isoformat(), "days": len(pairs), "mape_pct": round(mape, 3),
                "algorithm": fc.algorithm}  # fmt: skip
    return None


def check_forecast_errors(*, site_ids: list[int] | None = None) -> dict:
    """Raise or resolve ``forecast_error`` per network target (see the module doc)."""
    from intelligence import forecasting
    from sites.models import Site
    from telemetry import services
    from telemetry.models import Alert

    site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True)) if site_ids is None else site_ids
    threshold = forecast_mape_threshold()
    frame = forecasting.network_frame()
    out = {}
    for target in forecasting.NETWORK_TARGETS:
        err = realised_error(target, frame=frame)
        suffix = f":{FORECAST_ERROR}:{target}"
        if err is None:
            out[target] = {"decided": False}
            continue
        holds = err["mape_pct"] > threshold
        out[target] = {**err, "decided": True, "holds": holds}
        if holds:
            text, msg = _message(
                f"forecast_error_{target}", origin=err["origin"], mape=_fmt(err["mape_pct"]), days=str(err["days"]),
                threshold=_fmt(threshold, 0),
            )  # fmt: skip
            severity = "critical" if err["mape_pct"] > 2 * threshold else "warning"
            evidence = {**err, "target": target, "threshold_pct": threshold, "unit": "%", "msg": msg}
            services.alerts_raise([
                SubjectAlert(site_id=s, alert_type=FORECAST_ERROR, severity=severity, message=text, evidence=evidence,
                             key=f"{s}:-{suffix}")
                for s in site_ids
            ])  # fmt: skip
        else:
            stale = Alert.objects.filter(alert_type=FORECAST_ERROR, dedupe_key__endswith=suffix).exclude(
                status=Alert.Status.RESOLVED
            )
            ids = list(stale.values_list("pk", flat=True))
            if ids:
                services.alerts_resolve(alert_ids=ids, actor=None, note=RESOLVED_NOTES[FORECAST_ERROR])
    return out


# --- profit down (ROI) ---------------------------------------------------------------------------------------------


def weeks(last: date) -> tuple[dict, dict]:
    """(the 7 days before, the last 7 days) ending on ``last``, as ``roi.Period.as_dict``."""
    from intelligence.roi import Period

    after = Period(last - timedelta(days=WEEK_DAYS - 1), last)
    before = Period(after.start - timedelta(days=WEEK_DAYS), after.start - timedelta(days=1))
    return before.as_dict(), after.as_dict()


def scope_for(subject: str) -> dict:
    """``intelligence.roi``'s resolved scope for ``fleet``, ``site:<id>`` or ``customer:<id>``, unrestricted (the
    job sees everything; what a reader sees is decided where the alert is read)."""
    everything = {"kind": "all", "ids": []}
    if subject == "fleet":
        return {"kind": "fleet", "id": 0, "restrict": everything, "pricing": "site"}
    kind, _sep, ident = subject.partition(":")
    pricing = "customer" if kind == "customer" else "site"
    return {"kind": kind, "id": int(ident), "restrict": everything, "pricing": pricing, f"{kind}_id": int(ident)}


def profit_change(subject: str, *, last: date) -> dict:
    """The ROI attribution of ``subject`` for the last two weeks of market data: profits, change (%, None when the
    week before made no profit), and the biggest negative part."""
    from intelligence import roi

    before, after = weeks(last)
    request = {"scope": scope_for(subject), "before": before, "after": after, "power_price_usd_per_kwh": None,
               "capex_usd": None, "language": "en"}  # fmt: skip
    answer = roi.build_roi_explain(digest="", request=json.dumps(request, sort_keys=True))
    p0, p1 = Decimal(answer["profit_before_usd"]), Decimal(answer["profit_after_usd"])
    change = None if p0 <= 0 else float((p1 - p0) / p0 * 100)
    parts = {k: Decimal(v) for k, v in answer["parts_usd"].items()}
    factor, part = min(parts.items(), key=lambda kv: (kv[1], kv[0]))
    return {
        "subject": subject,
        "before": before,
        "after": after,
        "profit_before_usd": str(p0),
        "profit_after_usd": str(p1),
        "change_pct": None if change is None else round(change, 3),
        "biggest_factor": factor,
        "biggest_factor_usd": str(part),
        "parts_usd": answer["parts_usd"],
        "profit_source": [answer["before"]["profit_source"], answer["after"]["profit_source"]],
    }


def _main_sites(customer_ids: list[int]) -> dict[int, int]:
    """Per hosting client, the site hosting most of its active miners (ties: the lowest site id)."""
    from django.db.models import Count

    from miners.models import Miner, MinerStatus

    rows = (
        Miner.objects.filter(customer_id__in=customer_ids, status=MinerStatus.ACTIVE)
        .values("customer_id", "site_id").annotate(n=Count("pk")).order_by("customer_id", "-n", "site_id")
    )  # fmt: skip
    out: dict[int, int] = {}
    for r in rows:
        out.setdefault(r["customer_id"], r["site_id"])
    return out


def check_roi(*, last: date | None = None) -> dict:
    """Raise ``roi_down`` for every site and hosting client whose profit fell more than the threshold; resolve
    every other open one. Records the fleet's drift for ``/api/health``."""
    from intelligence import forecasting, roi
    from telemetry import services
    from telemetry.models import Alert

    bounds = roi.market_bounds()
    if bounds is None or (bounds[1] - bounds[0]).days < 2 * WEEK_DAYS - 1:
        record_roi_drift(None, reason="not enough market data for two weeks")
        return {"decided": False}
    last = last or bounds[1]
    threshold = roi_drop_threshold()
    subjects = forecasting.revenue_subjects()
    main_site = _main_sites([int(s.partition(":")[2]) for s in subjects if s.startswith("customer:")])
    items, checked, undecided = [], [], set()
    for subject in subjects:
        try:
            change = profit_change(subject, last=last)
        except Exception as exc:  # one subject's odd data must not stop the others' alerts
            log.warning("roi check failed", extra={"subject": subject, "error": f"{type(exc).__name__}: {exc}"})
            kind, _sep, ident = subject.partition(":")
            undecided.add(f"{ident}:-:{ROI_DOWN}" if kind == "site" else f"customer:{ident}:-:{ROI_DOWN}")
            continue
        checked.append(change)
        pct = change["change_pct"]
        if pct is None or pct >= -threshold:
            continue
        text, msg = _message(
            f"roi_down_{change['biggest_factor']}", days=str(WEEK_DAYS), after=_fmt(change["profit_after_usd"], 2),
            before=_fmt(change["profit_before_usd"], 2), pct=_fmt(-pct), part=_fmt(change["biggest_factor_usd"], 2),
        )  # fmt: skip
        evidence = {**change, "threshold_pct": threshold, "unit": "%", "msg": msg}
        severity = "critical" if pct < -3 * threshold else "warning"
        kind, _sep, ident = subject.partition(":")
        if kind == "site":
            items.append(SubjectAlert(site_id=int(ident), alert_type=ROI_DOWN, severity=severity, message=text,
                                      evidence=evidence, key=f"{ident}:-:{ROI_DOWN}"))  # fmt: skip
        elif int(ident) in main_site:
            items.append(SubjectAlert(site_id=main_site[int(ident)], alert_type=ROI_DOWN, severity=severity,
                                      message=text, evidence=evidence, customer_id=int(ident),
                                      key=f"customer:{ident}:-:{ROI_DOWN}"))  # fmt: skip
    raised = services.alerts_raise(items)
    keep = {i.dedupe_key for i in items} | undecided  # a subject that could not be checked keeps its open alert
    stale = [
        pk
        for pk, key in Alert.objects.filter(alert_type=ROI_DOWN)
        .exclude(status=Alert.Status.RESOLVED)
        .values_list("pk", "dedupe_key")
        if key not in keep
    ]
    resolved = services.alerts_resolve(alert_ids=stale, actor=None, note=RESOLVED_NOTES[ROI_DOWN]) if stale else []
    try:
        record_roi_drift(profit_change("fleet", last=last))
    except Exception as exc:
        record_roi_drift(None, reason=f"unavailable: {type(exc).__name__}")
    return {"checked": len(checked), "raised": len(raised), "resolved": len(resolved), "last_day": last.isoformat()}


def record_roi_drift(change: dict | None, *, reason: str = "") -> None:
    """What ``/api/health`` shows as roi_drift: the fleet's profit change in %, with when it was measured."""
    from django.core.cache import cache

    from hashinsight.core.cache import cache_key

    now = timezone.now().isoformat(timespec="seconds")
    if change is None or change["change_pct"] is None:
        value = {"value": None, "reason": reason or "the fleet made no profit in the earlier week", "measured_at": now}
    else:
        value = {
            "value": change["change_pct"], "unit": "%",
            "of": "fleet profit (all sites), last 7 market days vs the 7 before; ROI moves with it at fixed capex",
            "before": change["before"], "after": change["after"], "profit_before_usd": change["profit_before_usd"],
            "profit_after_usd": change["profit_after_usd"], "biggest_factor": change["biggest_factor"],
            "measured_at": now,
        }  # fmt: skip
    try:
        cache.set(cache_key("roi_drift"), value, 8 * 24 * 3600)
    except Exception:
        log.warning("roi drift not recorded (cache unavailable)")


def run() -> dict:
    """The job's body: forecast errors, then profit drops (and the fleet's drift)."""
    return {"forecast_error": check_forecast_errors(), "roi_down": check_roi()}
