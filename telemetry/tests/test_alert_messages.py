"""Alert messages: stored in English, shown in the reader's language from their id and parameters."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.utils import translation

from telemetry import alert_messages, rules
from telemetry.models import SafetyKind

# Parameters for every id: each sentence is rendered both ways with them.
PARAMS = {
    "value": "91.5", "threshold": "85.0", "minutes": "10", "ths": "80.1", "pct": "72", "nominal": "110.0",
    "watts": "3,010", "rejected": "1,204", "total": "40,100", "last_seen": "2026-11-26 03:40", "serial": "SN-1",
    "device": "collector-1",
}  # fmt: skip


def _python_to_percent(template: str) -> str:
    return re.sub(r"\{(\w+)\}", r"%(\1)s", template.replace("%", "%%"))


@pytest.mark.parametrize("msg_id", sorted(rules.MESSAGES))
def test_the_catalog_reads_exactly_like_the_stored_english(msg_id):
    with translation.override("en"):
        assert str(alert_messages.CATALOG[msg_id]) == _python_to_percent(rules.MESSAGES[msg_id])
        assert alert_messages.render(msg_id, PARAMS) == rules.MESSAGES[msg_id].format(**PARAMS)


def test_every_safety_kind_has_a_sentence_for_a_miner_and_for_the_site():
    from telemetry import safety

    device = SimpleNamespace(name="collector-1")
    for kind in SafetyKind.values:
        for serial in ("SN-1", None):
            msg = safety._msg(kind, serial, device)
            with translation.override("en"):
                assert alert_messages.render(msg["id"], msg["params"]) == safety._message(kind, serial, device)


def test_a_page_shows_the_message_in_the_readers_language():
    alert = SimpleNamespace(
        message="Chip temperature 91.5 °C is above 85.0 °C.",
        evidence={"msg": {"id": "chip_temp_above", "params": {"value": "91.5", "threshold": "85.0"}}},
    )
    with translation.override("zh-hans"):
        shown = alert_messages.alert_message(alert)
    assert "91.5" in shown and "85.0" in shown and shown != alert.message  # translated, figures kept


@pytest.mark.parametrize(
    "evidence",
    [
        {},  # an alert raised by an integration: no id
        {"msg": {"id": "nonexistent", "params": {}}},
        {"msg": {"id": "chip_temp_above", "params": {"value": "91.5"}}},  # a parameter missing
        {"msg": "not a dict"},
        None,
    ],
)
def test_without_a_usable_id_the_stored_message_is_shown(evidence):
    alert = SimpleNamespace(message="Something the integration said.", evidence=evidence)
    assert alert_messages.alert_message(alert) == "Something the integration said."
    row = {"message": "Something the integration said.", "msg": (evidence or {}).get("msg")}
    assert alert_messages.alert_message(row) == "Something the integration said."
