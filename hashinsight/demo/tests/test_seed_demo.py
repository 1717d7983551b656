from io import StringIO

import pytest
from django.core.management import call_command

from hashinsight.accounts.models import User
from intelligence.models import ForecastModel
from miners.models import Miner
from sites.models import Site

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_writes_credentials_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "60")
    call_command("seed_demo", "--miners", "60")
    assert Site.objects.count() == 3
    assert Miner.objects.count() == 60
    assert set(User.objects.values_list("role", flat=True)) == {
        "OWNER",
        "ADMIN",
        "MINING_SITE_OWNER",
        "CLIENT",
        "CUSTOMER",
        "GUEST",
    }
    lines = (tmp_path / "demo-credentials.txt").read_text().splitlines()
    assert len(lines) == 6
    owner_password = lines[0].split()[-1]
    assert User.objects.get(username="owner").check_password(owner_password)
    assert len(set(Site.objects.values_list("timezone", flat=True))) == 3
    assert Miner.objects.values("model").distinct().count() >= 5


def test_seed_demo_leaves_a_few_realistic_open_alerts_once(settings, tmp_path):
    from telemetry.models import Alert

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "300", "--no-models")
    call_command("seed_demo", "--miners", "300", "--no-models")  # a second run adds none and counts none up
    alerts = list(Alert.objects.select_related("miner"))
    by_type = {}
    for alert in alerts:
        by_type.setdefault(alert.alert_type, []).append(alert)
    assert set(by_type) == {"miner_offline", "zone_temperature", "fan_failure"}
    assert all(a.miner.status == Miner.Status.OFFLINE for a in by_type["miner_offline"])
    assert 1 <= len(by_type["miner_offline"]) <= 5
    assert by_type["zone_temperature"][0].miner is None
    assert by_type["zone_temperature"][0].severity == "warning"
    assert all(a.count == 1 for a in alerts)
    assert [a.status for a in alerts].count(Alert.Status.ACKNOWLEDGED) == 1
    acked = Alert.objects.get(status=Alert.Status.ACKNOWLEDGED)
    assert acked.acknowledged_by.username == "admin" and acked.ack_note
    assert Alert.objects.exclude(status=Alert.Status.RESOLVED).count() == len(alerts)


def test_seed_demo_proposes_two_commands_once(settings, tmp_path):
    """A LOW fan change approved by the rules (the demo's collector runs it) and a HIGH pool change waiting for two
    approvers; a second run proposes nothing more."""
    from commands.models import Command

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "300", "--no-models")
    call_command("seed_demo", "--miners", "300", "--no-models")
    commands = {c.command_type: c for c in Command.objects.all()}
    assert set(commands) == {"SET_FAN", "POOL_SET"} and Command.objects.count() == 2
    assert commands["SET_FAN"].status == "APPROVED" and commands["SET_FAN"].risk_tier == "LOW"
    assert commands["POOL_SET"].status == "PENDING_APPROVAL" and commands["POOL_SET"].approvals_required == 2
    assert {c.proposer.username for c in commands.values()} == {"siteowner"}


def test_seed_demo_serves_trained_network_models_not_the_naive_fallback(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "0", stdout=StringIO())
    active = dict(ForecastModel.objects.filter(status="active").values_list("target", "algorithm"))
    assert active == {"difficulty": "difficulty_epoch", "hashprice": "hashprice_composite"}
    out = StringIO()
    call_command("seed_demo", "--miners", "0", stdout=out)  # a re-seed trains nothing more
    assert "difficulty: difficulty_epoch v1 already active" in out.getvalue()
    assert "btc_price: prophet, xgboost already trained (naive serves)" in out.getvalue()
    # the two active models and the BTC price's Prophet and XGBoost, backtested for the page (naive beats them)
    assert ForecastModel.objects.count() == 4


def test_seeded_offline_alerts_carry_the_offline_rules_message_id(settings, tmp_path):
    """A seeded offline alert reads like the real offline rule's (``telemetry.rules``, "offline_silent"), so a page
    shows it in the reader's language; its stored message is that id's English sentence."""
    from django.utils import translation

    from telemetry.alert_messages import alert_message
    from telemetry.models import Alert

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "300", "--no-models", stdout=StringIO())
    offline = list(Alert.objects.filter(alert_type="miner_offline"))
    assert offline
    for alert in offline:
        msg = alert.evidence["msg"]
        assert msg["id"] == "offline_silent" and set(msg["params"]) == {"minutes", "last_seen"}
        with translation.override("en"):
            assert alert_message(alert) == alert.message  # the id's English is the stored message
        assert alert.message.startswith(f"No sample from the miner for {msg['params']['minutes']} min")
        with translation.override("zh-hans"):
            assert alert_message(alert).startswith(f"矿机已 {msg['params']['minutes']} 分钟没有上报数据")
