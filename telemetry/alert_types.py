"""Words for alert type codes. Alerts store a stable code (``chip_temp_above``, ``safety_fan_failure``,
``miner_offline``…); pages show it in the reader's language. A code without a label (one raised by an
integration or ``manage.py alert``) is shown as it is."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from telemetry.models import AlertRuleKind, SafetyKind

SAFETY_PREFIX = "safety_"


def alert_type_labels() -> dict:
    """Every known code → its label (lazy translations: evaluate inside a request)."""
    return {
        **dict(AlertRuleKind.choices),
        **{f"{SAFETY_PREFIX}{code}": label for code, label in SafetyKind.choices},
        "miner_offline": _("Miner offline"),
        "zone_temperature": _("Zone temperature"),
        "fan_failure": _("Fan failure"),
        # commands.verification: an acknowledged command whose effect telemetry did not show in time
        "command_effect_not_seen": _("Command effect not seen"),
        # intelligence.anomaly_scan: a miner's newest hour unlike its own usual level
        "anomaly_hashrate": _("Hashrate anomaly"),
        "anomaly_temperature": _("Chip temperature anomaly"),
        "anomaly_power": _("Power anomaly"),
        # intelligence.smart_alerts: a network forecast that missed; profit down week on week (site or client)
        "forecast_error": _("Forecast error"),
        "roi_down": _("Profit down week on week"),
        # intelligence.curtailment_events: a miner hashing again during an event whose drift action is "flag"
        "curtailment_drift": _("Curtailment drift"),
    }


def alert_type_label(code: str) -> str:
    return str(alert_type_labels().get(code, code))
