"""The commands API: propose / preview / approve / deny / cancel / read / list with filters and keyset
pages, the error shape, visibility (hidden → 404) and the seed's retired paths (410 Gone)."""

from __future__ import annotations

import pytest

from commands.models import Command, CommandStatus

S = CommandStatus
pytestmark = pytest.mark.django_db
ERROR_KEYS = {"error_code", "message", "request_id", "details"}


def as_user(api, farm, who):
    api.force_authenticate(farm.users[who])
    return api


def propose(api, farm, who="siteowner_a", **body):
    as_user(api, farm, who)
    body.setdefault("type", "MINER_RESTART")
    body.setdefault("targets", [farm.miners[("site-a", "own")].pk])
    return api.post("/api/v1/commands/propose", body, format="json")


def error(response, status):
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == ERROR_KEYS
    return body


def test_propose_then_approve_through_the_api(api, farm):
    response = propose(api, farm)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["risk_tier"], body["approvals_required"]) == (S.PENDING_APPROVAL, "MEDIUM", 1)
    assert body["targets"][0]["serial"] == farm.miners[("site-a", "own")].serial
    assert body["risk_breakdown"]["breakdown"] and body["proposer"] == "siteowner_a"
    as_user(api, farm, "owner")
    approved = api.post(f"/api/v1/commands/{body['id']}/approve", {}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == S.APPROVED
    assert approved.json()["approvals"][0]["approver"] == "owner"


def test_re_proposing_with_the_same_dedupe_key_answers_200_with_the_same_command(api, farm):
    first = propose(api, farm, dedupe_key="k1")
    again = propose(api, farm, dedupe_key="k1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_bad_parameters_are_a_400_in_the_error_shape(api, farm):
    body = error(propose(api, farm, type="SET_FAN", params={"percent": "lots"}), 400)
    assert body["error_code"] == "invalid_type" and body["details"]["field"] == "percent"
    body = error(propose(api, farm, type="SET_FAN", params={"percent": 50}, targets="all"), 400)
    assert body["error_code"] == "invalid_targets"
    assert not Command.objects.exists()


def test_self_approval_and_deny_without_reason_through_the_api(api, farm):
    command_id = propose(api, farm).json()["id"]
    assert error(api.post(f"/api/v1/commands/{command_id}/approve", {}), 403)["error_code"] == "self_approval"
    as_user(api, farm, "owner")
    assert error(api.post(f"/api/v1/commands/{command_id}/deny", {"reason": ""}), 400)["error_code"] == (
        "reason_required"
    )
    denied = api.post(f"/api/v1/commands/{command_id}/deny", {"reason": "not now"}, format="json")
    assert denied.json()["status"] == S.DENIED
    again = error(api.post(f"/api/v1/commands/{command_id}/cancel", {}), 409)
    assert again["error_code"] == "illegal_transition"
    assert again["details"] == {"from": S.DENIED, "to": S.CANCELLED, "allowed": []}


def test_hidden_commands_answer_404_and_clients_have_no_commands(api, farm):
    command_id = propose(api, farm, who="owner").json()["id"]
    as_user(api, farm, "siteowner_b_ro")
    assert error(api.get(f"/api/v1/commands/{command_id}"), 404)["error_code"] == "not_found"
    assert error(api.post(f"/api/v1/commands/{command_id}/approve", {}), 404)["error_code"] == "not_found"
    assert api.get("/api/v1/commands").json()["results"] == []
    as_user(api, farm, "client_x")
    assert api.get(f"/api/v1/commands/{command_id}").status_code == 403  # no CURTAILMENT access at all
    assert api.get("/api/v1/commands").status_code == 403
    api.force_authenticate(None)
    assert api.get("/api/v1/commands").status_code in (401, 403)


def test_preview_scores_without_creating(api, farm):
    as_user(api, farm, "siteowner_a")
    body = {"type": "stop", "targets": {"zone": farm.zone_a.pk}}
    response = api.post("/api/v1/commands/preview", body, format="json")
    assert response.status_code == 200, response.content
    preview = response.json()
    assert (preview["tier"], preview["approvals_required"], preview["target_count"]) == ("HIGH", 2, 3)
    assert "2 distinct approver" in preview["who_must_approve"]
    assert preview["breakdown"]["breakdown"] and preview["refusals"] == []
    assert not Command.objects.exists()


def test_list_filters_and_keyset_pages(api, farm):
    for _ in range(3):
        propose(api, farm, who="owner")
    propose(api, farm, who="owner", type="set_fan", params={"percent": 70})
    propose(api, farm, who="owner", targets=[farm.miners[("site-b", "own")].pk])
    as_user(api, farm, "owner")
    everything = api.get("/api/v1/commands").json()["results"]
    assert len(everything) == 5 and [c["id"] for c in everything] == sorted((c["id"] for c in everything), reverse=True)
    assert len(api.get("/api/v1/commands", {"site": farm.site_b.pk}).json()["results"]) == 1
    assert len(api.get("/api/v1/commands", {"type": "reboot"}).json()["results"]) == 4
    assert len(api.get("/api/v1/commands", {"status": "APPROVED"}).json()["results"]) == 1
    assert len(api.get("/api/v1/commands", {"status": "APPROVED,PENDING_APPROVAL"}).json()["results"]) == 5
    assert len(api.get("/api/v1/commands", {"risk_tier": "LOW"}).json()["results"]) == 1
    assert len(api.get("/api/v1/commands", {"proposer": farm.users["admin"].pk}).json()["results"]) == 0
    assert len(api.get("/api/v1/commands", {"created_after": "2000-01-01T00:00:00Z"}).json()["results"]) == 5
    assert len(api.get("/api/v1/commands", {"created_before": "2000-01-01T00:00:00Z"}).json()["results"]) == 0
    seen, page = [], api.get("/api/v1/commands", {"limit": 2}).json()
    while True:
        seen += [c["id"] for c in page["results"]]
        if not page["next_cursor"]:
            break
        page = api.get("/api/v1/commands", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert seen == [c["id"] for c in everything]
    assert error(api.get("/api/v1/commands", {"cursor": "nope"}), 400)["error_code"] == "bad_cursor"
    assert error(api.get("/api/v1/commands", {"status": "BOGUS"}), 400)["error_code"] == "validation_error"
    # The site owner of A sees A's commands only.
    as_user(api, farm, "siteowner_a")
    assert len(api.get("/api/v1/commands").json()["results"]) == 4


def test_a_pool_password_is_never_shown(api, farm):
    params = {"url": "stratum+tcp://pool.example.com:3333", "worker": "w1", "password": "s3cret"}
    body = propose(api, farm, who="owner", type="set_pool", params=params).json()
    assert body["params"]["password"] == "********"
    assert "s3cret" not in api.get(f"/api/v1/commands/{body['id']}").content.decode()


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/sites/1/commands"),
        ("post", "/api/sites/1/commands"),
        ("get", "/api/commands/5"),
        ("get", "/api/remote/commands/pending"),
    ],
)
def test_the_seeds_retired_command_paths_answer_410_with_a_link_to_v1(api, farm, method, path):
    as_user(api, farm, "owner")
    response = getattr(api, method)(path)
    body = error(response, 410)
    assert body["error_code"] == "gone"
    assert response["Link"] == '</api/v1/commands>; rel="successor-version"'


def test_detail_and_list_show_verification_action_not_before_device_and_rollbacks(
    api, farm, django_assert_max_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    from commands import services
    from commands.models import CommandTarget
    from telemetry import devices

    _row, code = devices.enrollment_code_create(site=farm.site_a)
    device, _token, _secret = devices.device_register(code=code, name="rack-7", version="1.0.0")
    miner = farm.miners[("site-a", "own")]
    fan = propose(api, farm, who="owner", type="SET_FAN", params={"percent": 70}).json()
    services.command_mark_dispatched(command=Command.objects.get(pk=fan["id"]), device=device)
    Command.objects.filter(pk=fan["id"]).update(verification="verified")
    CommandTarget.objects.filter(command_id=fan["id"]).update(verification="verified", verification_detail="fan 70 %")
    start = timezone.now() + timedelta(minutes=30)
    window = {"kw": 1, "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    curtail = propose(api, farm, who="owner", type="CURTAIL", params=window).json()
    rollback = Command.objects.create(
        site=farm.site_a, command_type="SET_FAN", params={"percent": 40}, risk_score=0, risk_tier="LOW",
        expires_at=timezone.now() + timedelta(hours=1), rollback_of_id=fan["id"],
    )  # fmt: skip

    as_user(api, farm, "owner")
    body = api.get(f"/api/v1/commands/{fan['id']}").json()
    assert body["dispatched_to"] == {"id": device.pk, "name": "rack-7"}
    assert (body["verification"], body["rollbacks"], body["rollback_of"], body["not_before"]) == (
        "verified", [rollback.pk], None, None
    )  # fmt: skip
    (target,) = body["targets"]
    assert (target["serial"], target["verification"], target["verification_detail"]) == (
        miner.serial, "verified", "fan 70 %"
    )  # fmt: skip
    assert target["action"] == {} and "verified_at" in target
    body = api.get(f"/api/v1/commands/{curtail['id']}").json()
    assert body["not_before"] is not None and body["dispatched_to"] is None and body["verification"] == ""
    assert body["targets"][0]["action"] == {"action": "power_target", "power_w": 2500}
    assert api.get(f"/api/v1/commands/{rollback.pk}").json()["rollback_of"] == fan["id"]

    def ids(**query):
        return [row["id"] for row in api.get("/api/v1/commands", query).json()["results"]]

    assert ids(verification="verified") == [fan["id"]]
    assert ids(verification="verified,not_seen") == [fan["id"]]
    assert ids(verification="pending") == []
    assert error(api.get("/api/v1/commands", {"verification": "maybe"}), 400)["error_code"] == "validation_error"
    with django_assert_max_num_queries(12):  # constant: related rows joined or prefetched, not per command
        rows = api.get("/api/v1/commands").json()["results"]
    by_id = {row["id"]: row for row in rows}
    assert by_id[fan["id"]]["dispatched_to"]["name"] == "rack-7" and by_id[fan["id"]]["rollbacks"] == [rollback.pk]
