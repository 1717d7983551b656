"""/api/v1/sites/{id}/alert-rules and the service behind it: who reads and who changes (per role and
grant), validation with error codes, and that a refused change writes nothing and publishes nothing."""

from __future__ import annotations

import pytest

from hashinsight.core.errors import DomainError
from hashinsight.events.models import OutboxEvent
from telemetry import rule_services
from telemetry import rules as R
from telemetry.models import AlertRule

pytestmark = pytest.mark.django_db


def url(site) -> str:
    return f"/api/v1/sites/{site.pk}/alert-rules"


def as_user(api, farm, username):
    api.force_authenticate(farm.users[username])
    return api


def stored(site) -> dict[str, tuple]:
    return {
        r.kind: (r.enabled, r.threshold, r.duration_minutes, r.severity) for r in AlertRule.objects.filter(site=site)
    }


def rule_events():
    return list(OutboxEvent.objects.filter(event_type="alert_rules.changed"))


FULL = [
    {"kind": R.CHIP_TEMP_ABOVE, "enabled": True, "threshold": 88, "duration_minutes": 0, "severity": "critical"},
    {"kind": R.HASHRATE_BELOW_PCT, "enabled": True, "threshold": 75, "duration_minutes": 20, "severity": "warning"},
    {"kind": R.OFFLINE_FOR, "enabled": True, "threshold": 0, "duration_minutes": 15, "severity": "critical"},
    {"kind": R.POWER_DEVIATION_PCT, "enabled": False, "threshold": 25, "duration_minutes": 15, "severity": "info"},
    {"kind": R.REJECT_RATE_ABOVE_PCT, "enabled": True, "threshold": 3.5, "duration_minutes": 30, "severity": "warning"},
]


# --- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "site_key", "status", "can_manage"),
    [
        ("owner", "site_b", 200, True),
        ("admin", "site_a", 200, True),
        ("siteowner_a", "site_a", 200, True),
        ("siteowner_a", "site_b", 404, None),  # not granted: hidden
        ("siteowner_b_ro", "site_b", 200, False),
        ("client_x", "site_a", 200, False),  # its miners stand there: it reads the site's rules
        ("customer", "site_a", 403, None),
        ("guest", "site_a", 403, None),
    ],
)
def test_who_reads_a_sites_rules(api, farm, username, site_key, status, can_manage):
    response = as_user(api, farm, username).get(url(getattr(farm, site_key)))
    assert response.status_code == status, response.content
    if status == 200:
        body = response.json()
        assert body["can_manage"] is can_manage
        assert [r["kind"] for r in body["rules"]] == list(R.KINDS)


def test_the_first_read_writes_the_defaults_once(api, farm):
    assert not AlertRule.objects.exists()
    body = as_user(api, farm, "owner").get(url(farm.site_a)).json()
    chip = body["rules"][0]
    assert chip == {
        "kind": "chip_temp_above", "label": "Chip temperature above (°C)", "enabled": True, "threshold": 90.0,
        "unit": "°C", "threshold_min": 40.0, "threshold_max": 130.0, "duration_minutes": 0, "severity": "critical",
        "updated_at": chip["updated_at"],
    }  # fmt: skip
    assert stored(farm.site_a) == {
        r.kind: (r.enabled, r.threshold, r.duration_minutes, r.severity) for r in R.default_rules()
    }
    api.get(url(farm.site_a))
    assert AlertRule.objects.count() == 5
    assert rule_events() == []  # the defaults were in force already: nothing changed


def test_the_url_also_answers_with_a_trailing_slash(api, farm):
    assert as_user(api, farm, "owner").get(url(farm.site_a) + "/").status_code == 200


# --- changing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "site_key", "status"),
    [
        ("owner", "site_b", 200),
        ("admin", "site_a", 200),
        ("siteowner_a", "site_a", 200),
        ("siteowner_a", "site_b", 404),
        ("siteowner_b_ro", "site_b", 403),
        ("client_x", "site_a", 403),
        ("customer", "site_a", 403),
        ("guest", "site_b", 403),
    ],
)
def test_who_changes_a_sites_rules(api, farm, username, site_key, status):
    site = getattr(farm, site_key)
    body = {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "threshold": 87}]}
    response = as_user(api, farm, username).patch(url(site), body, format="json")
    assert response.status_code == status, response.content
    if status == 200:
        assert stored(site)[R.CHIP_TEMP_ABOVE] == (True, 87.0, 0, "critical")
        (event,) = rule_events()
        assert event.payload == {"site_id": site.pk, "kinds": [R.CHIP_TEMP_ABOVE]}
        assert AlertRule.objects.get(site=site, kind=R.CHIP_TEMP_ABOVE).updated_by == farm.users[username]
    else:
        assert stored(site) == {} and rule_events() == []
        if status == 403:
            assert response.json()["error_code"] in {"permission_denied", "site_read_only"}


def test_put_replaces_all_five(api, farm):
    response = as_user(api, farm, "siteowner_a").put(url(farm.site_a), {"rules": FULL}, format="json")
    assert response.status_code == 200, response.content
    assert stored(farm.site_a) == {
        r["kind"]: (r["enabled"], float(r["threshold"]), r["duration_minutes"], r["severity"]) for r in FULL
    }
    assert [r["threshold"] for r in response.json()["rules"]] == [88.0, 75.0, 0.0, 25.0, 3.5]
    (event,) = rule_events()
    assert event.payload["kinds"] == sorted(R.KINDS)


def test_a_repeat_of_the_same_values_changes_nothing(api, farm):
    as_user(api, farm, "owner").put(url(farm.site_a), {"rules": FULL}, format="json")
    before = {r.kind: r.updated_at for r in AlertRule.objects.filter(site=farm.site_a)}
    assert api.put(url(farm.site_a), {"rules": FULL}, format="json").status_code == 200
    assert {r.kind: r.updated_at for r in AlertRule.objects.filter(site=farm.site_a)} == before
    assert len(rule_events()) == 1


@pytest.mark.parametrize(
    ("method", "body", "code", "details"),
    [
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "threshold": 200}]}, "invalid_alert_rules",
         {"errors": {R.CHIP_TEMP_ABOVE: {"threshold": "threshold_out_of_range"}}}),
        ("patch", {"rules": [{"kind": R.HASHRATE_BELOW_PCT, "threshold": 0}]}, "invalid_alert_rules",
         {"errors": {R.HASHRATE_BELOW_PCT: {"threshold": "threshold_out_of_range"}}}),
        ("patch", {"rules": [{"kind": R.OFFLINE_FOR, "threshold": 5}]}, "invalid_alert_rules",
         {"errors": {R.OFFLINE_FOR: {"threshold": "threshold_out_of_range"}}}),
        ("patch", {"rules": [{"kind": R.POWER_DEVIATION_PCT, "duration_minutes": 1441},
                             {"kind": R.REJECT_RATE_ABOVE_PCT, "threshold": 0.05}]}, "invalid_alert_rules",
         {"errors": {R.POWER_DEVIATION_PCT: {"duration_minutes": "duration_out_of_range"},
                     R.REJECT_RATE_ABOVE_PCT: {"threshold": "threshold_out_of_range"}}}),
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "threshold": 85},
                             {"kind": R.POWER_DEVIATION_PCT, "duration_minutes": -5}]}, "invalid_alert_rules",
         {"errors": {R.POWER_DEVIATION_PCT: {"duration_minutes": "duration_out_of_range"}}}),
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "severity": "fatal"}]}, "validation_error", None),
        ("patch", {"rules": [{"kind": "fan_below", "threshold": 1}]}, "validation_error", None),
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "duration_minutes": 2.5}]}, "validation_error", None),
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "threshold": "hot"}]}, "validation_error", None),
        ("patch", {"rules": [{"kind": R.CHIP_TEMP_ABOVE}, {"kind": R.CHIP_TEMP_ABOVE}]}, "validation_error", None),
        ("patch", {"rules": []}, "validation_error", None),
        ("patch", {}, "validation_error", None),
        ("put", {"rules": FULL[:4]}, "validation_error", None),
        ("put", {"rules": [{k: v for k, v in r.items() if k != "severity"} for r in FULL]}, "validation_error", None),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_with_a_code_and_changes_nothing(api, farm, method, body, code, details):
    client = as_user(api, farm, "owner")
    client.get(url(farm.site_a))  # the defaults are stored
    before = stored(farm.site_a)
    response = getattr(client, method)(url(farm.site_a), body, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["error_code"] == code
    if details is not None:
        assert payload["details"] == details
    else:
        assert "rules" in payload["details"]  # the field at fault, as every validation error names it
    assert stored(farm.site_a) == before
    assert rule_events() == []


def test_a_refused_first_change_does_not_even_write_the_defaults(api, farm):
    body = {"rules": [{"kind": R.CHIP_TEMP_ABOVE, "threshold": 10}]}
    assert as_user(api, farm, "owner").patch(url(farm.site_a), body, format="json").status_code == 400
    assert not AlertRule.objects.exists()


# --- the service on its own (what the portal and admin call) ----------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"fan_below": {}}, "unknown_rule_kind"),
        ({R.CHIP_TEMP_ABOVE: {"colour": "red"}}, "unknown_rule_field"),
        ({R.CHIP_TEMP_ABOVE: 90}, "invalid_alert_rules"),
        ({R.CHIP_TEMP_ABOVE: {"enabled": "yes"}}, "invalid_alert_rules"),
        ({R.CHIP_TEMP_ABOVE: {"threshold": "90"}}, "invalid_alert_rules"),
        ({R.CHIP_TEMP_ABOVE: {"duration_minutes": True}}, "invalid_alert_rules"),
        ([], "invalid_alert_rules"),
    ],
)
def test_the_service_refuses_what_the_api_cannot_send_either(farm, changes, code):
    with pytest.raises(DomainError) as caught:
        rule_services.alert_rules_update(site=farm.site_a, actor=farm.users["owner"], changes=changes)
    assert caught.value.code == code and caught.value.status == 400
    assert not AlertRule.objects.exists() and rule_events() == []


def test_the_schema_documents_the_endpoint(api, farm):
    response = as_user(api, farm, "owner").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"get", "put", "patch"} <= set(paths["/api/v1/sites/{site_id}/alert-rules/"])
