"""Alert messages in the reader's language.

An alert stores its message in English (``Alert.message``: what the API, CSV exports and e-mails carry)
and, in its evidence, the message's id and parameters (``{"msg": {"id", "params"}}``, written by
``telemetry.rules`` and ``telemetry.safety``). Pages show ``alert_message(alert)``: the id's sentence
translated, with the parameters filled in. An alert without an id (raised by an integration or
``manage.py alert``) or with parameters that do not fit shows its stored message."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# One sentence per id; the English must read exactly as the stored message (tests/test_alert_messages.py).
CATALOG = {
    "chip_temp_above": _("Chip temperature %(value)s °C is above %(threshold)s °C."),
    "chip_temp_above_for": _("Chip temperature %(value)s °C is above %(threshold)s °C for %(minutes)s min."),
    "hashrate_below": _(
        "Hashrate %(ths)s TH/s (5-min average) is %(pct)s %% of the nominal %(nominal)s TH/s, below %(threshold)s %%."
    ),
    "hashrate_below_for": _(
        "Hashrate %(ths)s TH/s (5-min average) is %(pct)s %% of the nominal %(nominal)s TH/s, below %(threshold)s %% "
        "for %(minutes)s min."
    ),
    "power_deviation": _("Power %(watts)s W is %(pct)s %% off the nominal %(nominal)s W, more than %(threshold)s %%."),
    "power_deviation_for": _(
        "Power %(watts)s W is %(pct)s %% off the nominal %(nominal)s W, more than %(threshold)s %% for %(minutes)s min."
    ),
    "reject_rate_above": _(
        "Reject rate %(pct)s %% (%(rejected)s of %(total)s shares) is above %(threshold)s %% over %(minutes)s min."
    ),
    "offline_reported": _("The miner has reported offline for %(minutes)s min."),
    "offline_silent": _("No sample from the miner for %(minutes)s min (last seen %(last_seen)s UTC)."),
    "safety_overheat_shutdown": _(
        "Miner %(serial)s shut down to protect itself from overheating (reported by edge device “%(device)s”)."
    ),
    "safety_fan_failure": _("Fan failure on miner %(serial)s (reported by edge device “%(device)s”)."),
    "safety_power_loss": _("Power loss on miner %(serial)s (reported by edge device “%(device)s”)."),
    "safety_hashboard_failure": _(
        "Hashboard or chain failure on miner %(serial)s (reported by edge device “%(device)s”)."
    ),
    "safety_overheat_shutdown_site": _(
        "Overheat shutdown reported at the site (reported by edge device “%(device)s”)."
    ),
    "safety_fan_failure_site": _("Fan failure reported at the site (reported by edge device “%(device)s”)."),
    "safety_power_loss_site": _("Power loss at the site (reported by edge device “%(device)s”)."),
    "safety_hashboard_failure_site": _(
        "Hashboard or chain failure reported at the site (reported by edge device “%(device)s”)."
    ),
    # intelligence.anomaly_scan (anomaly_scan.MESSAGES): the newest hour against the miner's usual level
    "anomaly_hashrate_below": _(
        "Hashrate %(value)s TH/s over the last hour is %(pct)s %% below its usual %(expected)s TH/s "
        "(robust z %(score)s)."
    ),
    "anomaly_hashrate_below_tod": _(
        "Hashrate %(value)s TH/s over the last hour is %(pct)s %% below its usual %(expected)s TH/s for this time of "
        "day (robust z %(score)s)."
    ),
    "anomaly_temperature_above": _(
        "Chip temperature %(value)s °C over the last hour is %(delta)s °C above its usual %(expected)s °C "
        "(robust z %(score)s)."
    ),
    "anomaly_temperature_above_tod": _(
        "Chip temperature %(value)s °C over the last hour is %(delta)s °C above its usual %(expected)s °C for this "
        "time of day (robust z %(score)s)."
    ),
    "anomaly_power_above": _(
        "Power %(value)s W over the last hour is %(pct)s %% above its usual %(expected)s W (robust z %(score)s)."
    ),
    "anomaly_power_above_tod": _(
        "Power %(value)s W over the last hour is %(pct)s %% above its usual %(expected)s W for this time of day "
        "(robust z %(score)s)."
    ),
    "anomaly_power_below": _(
        "Power %(value)s W over the last hour is %(pct)s %% below its usual %(expected)s W (robust z %(score)s)."
    ),
    "anomaly_power_below_tod": _(
        "Power %(value)s W over the last hour is %(pct)s %% below its usual %(expected)s W for this time of day "
        "(robust z %(score)s)."
    ),
    # intelligence.smart_alerts (smart_alerts.MESSAGES): a network forecast that missed; profit down week on week
    "forecast_error_btc_price": _(
        "The BTC price forecast made on %(origin)s missed by %(mape)s %% (MAPE over %(days)s realised days), "
        "above %(threshold)s %%."
    ),
    "forecast_error_difficulty": _(
        "The difficulty forecast made on %(origin)s missed by %(mape)s %% (MAPE over %(days)s realised days), "
        "above %(threshold)s %%."
    ),
    "forecast_error_hashprice": _(
        "The hashprice forecast made on %(origin)s missed by %(mape)s %% (MAPE over %(days)s realised days), "
        "above %(threshold)s %%."
    ),
    "roi_down_btc_price": _(
        "Profit over the last %(days)s days (%(after)s USD) is %(pct)s %% below the %(days)s days before "
        "(%(before)s USD); the biggest factor: BTC price (%(part)s USD)."
    ),
    "roi_down_difficulty": _(
        "Profit over the last %(days)s days (%(after)s USD) is %(pct)s %% below the %(days)s days before "
        "(%(before)s USD); the biggest factor: difficulty (%(part)s USD)."
    ),
    "roi_down_offline_rate": _(
        "Profit over the last %(days)s days (%(after)s USD) is %(pct)s %% below the %(days)s days before "
        "(%(before)s USD); the biggest factor: offline rate (%(part)s USD)."
    ),
    "roi_down_power_price": _(
        "Profit over the last %(days)s days (%(after)s USD) is %(pct)s %% below the %(days)s days before "
        "(%(before)s USD); the biggest factor: power price (%(part)s USD)."
    ),
    "roi_down_fees_residual": _(
        "Profit over the last %(days)s days (%(after)s USD) is %(pct)s %% below the %(days)s days before "
        "(%(before)s USD); the biggest factor: fees and the rest (%(part)s USD)."
    ),
    # intelligence.curtailment_events (drift_message): a miner hashing again during an event, drift action "flag"
    "curtailment_drift": _(
        "Miner %(serial)s resumed hashing during curtailment event #%(event)s (%(ths)s TH/s, %(watts)s W); "
        "flagged, not curtailed again."
    ),
}


def render(msg_id: str, params: dict) -> str | None:
    """The sentence of ``msg_id`` in the active language, or None for an unknown id or unfit parameters."""
    template = CATALOG.get(msg_id)
    if template is None or not isinstance(params, dict):
        return None
    try:
        return str(template) % {str(k): str(v) for k, v in params.items()}
    except (KeyError, TypeError, ValueError):
        return None


def alert_message(alert) -> str:
    """What a page shows for ``alert`` (an Alert, or a row dict with ``message`` and ``msg`` as the site
    summary gives): its message in the reader's language when it can, else as stored."""
    if isinstance(alert, dict):
        msg, stored = alert.get("msg"), alert.get("message", "")
    else:
        msg = alert.evidence.get("msg") if isinstance(alert.evidence, dict) else None
        stored = alert.message
    if isinstance(msg, dict):
        text = render(msg.get("id"), msg.get("params"))
        if text is not None:
            return text
    return stored
