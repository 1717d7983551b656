"""The commands pages: who sees them (nav, 403 by role, 404 for a hidden site's command), the list's filters,
tab, keyset pages and CSV, the detail page's buttons per state and right, approve / deny / cancel / rollback
through the page (refusals as messages, never a 500), proposing through the page, the preview script's
contract with POST /api/v1/commands/preview (session auth + CSRF header), and the live frames: commands.handlers
sends to the site and ALL groups only, and a hosting client's socket never receives a command frame."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from commands import services
from commands.handlers import push_command
from commands.models import Command, CommandStatus, Verification
from hashinsight.events.contracts import CommandEvent
from hashinsight.portal.views import commands as pages

S = CommandStatus
pytestmark = pytest.mark.django_db


def propose(farm, who="siteowner_a", site="site-a", key="own", type="MINER_RESTART", **kwargs):
    """MINER_RESTART on one miner: MEDIUM, one approver."""
    return services.command_propose(
        actor=farm.users[who], type=type, targets=[farm.miners[(site, key)].pk], **kwargs
    ).command


def signed_in(client, farm, who):
    client.force_login(farm.users[who])
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# ---------------------------------------------------------------------------------------------------
# Who sees what


@pytest.mark.parametrize(
    ("who", "status", "nav"),
    [
        ("owner", 200, True),
        ("admin", 200, True),
        ("siteowner_a", 200, True),
        ("siteowner_b_ro", 200, True),
        ("client_x", 403, False),
        ("customer", 403, False),
        ("guest", 403, False),
    ],
)
def test_the_pages_follow_the_curtailment_column_of_the_matrix(client, farm, who, status, nav):
    command = propose(farm, who="owner")
    signed_in(client, farm, who)
    home = client.get("/")
    assert (b'data-testid="nav-commands"' in home.content) is nav
    for url in ("/commands/", "/commands/?format=csv", "/commands/new/", f"/commands/{command.pk}/"):
        expected = status
        if url == "/commands/new/" and who in ("owner", "admin", "siteowner_a", "siteowner_b_ro"):
            expected = 200  # FULL on CURTAILMENT
        if url.startswith(f"/commands/{command.pk}/") and who == "siteowner_b_ro":
            expected = 404  # site A is not theirs
        assert client.get(url).status_code == expected, url
    for action in ("approve", "deny", "cancel", "rollback"):
        response = client.post(f"/commands/{command.pk}/{action}/", {"reason": "x"})
        assert response.status_code == (404 if who == "siteowner_b_ro" else status if status != 200 else 302), action
    assert Command.objects.get(pk=command.pk).status in (S.PENDING_APPROVAL, S.APPROVED, S.DENIED, S.CANCELLED)


def test_anonymous_visitors_are_sent_to_the_login_page(client, farm):
    response = client.get("/commands/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_hidden_sites_command_is_404_everywhere(client, farm):
    hidden = propose(farm, who="owner", site="site-b")
    signed_in(client, farm, "siteowner_a")
    assert client.get(f"/commands/{hidden.pk}/").status_code == 404
    assert client.get(f"/commands/{hidden.pk}/row").status_code == 404
    assert client.get(f"/commands/{hidden.pk}/?format=csv").status_code == 404
    for action in ("approve", "deny", "cancel", "rollback"):
        assert client.post(f"/commands/{hidden.pk}/{action}/", {"reason": "no"}).status_code == 404
    assert Command.objects.get(pk=hidden.pk).status == S.PENDING_APPROVAL
    listed = client.get("/commands/")
    assert f'data-command-id="{hidden.pk}"'.encode() not in listed.content


def test_actions_need_a_post(client, farm):
    command = propose(farm)
    signed_in(client, farm, "owner")
    for action in ("approve", "deny", "cancel", "rollback"):
        assert client.get(f"/commands/{command.pk}/{action}/").status_code == 405


# ---------------------------------------------------------------------------------------------------
# The detail page: buttons and actions


def buttons(response) -> set[str]:
    html = response.content.decode()
    return {name for name in ("approve", "deny", "cancel", "rollback") if f'data-testid="{name}-form"' in html}


def test_buttons_follow_the_state_and_the_users_rights(client, farm):
    command = propose(farm)  # siteowner_a's own command
    assert buttons(signed_in(client, farm, "siteowner_a").get(f"/commands/{command.pk}/")) == {"cancel"}
    assert buttons(signed_in(client, farm, "owner").get(f"/commands/{command.pk}/")) == {"approve", "deny", "cancel"}
    Command.objects.filter(pk=command.pk).update(status=S.COMPLETED)
    assert buttons(client.get(f"/commands/{command.pk}/")) == set()  # a restart cannot be undone
    fan = propose(farm, type="SET_FAN", params={"percent": 50})
    Command.objects.filter(pk=fan.pk).update(status=S.COMPLETED)
    assert buttons(client.get(f"/commands/{fan.pk}/")) == {"rollback"}
    propose(farm, type="SET_FAN", params={"percent": 60}, rollback_of=fan)  # a rollback under way
    assert buttons(client.get(f"/commands/{fan.pk}/")) == set()
    # A read-only grant on site B: sees B's commands, no button.
    on_b = propose(farm, who="owner", site="site-b")
    assert buttons(signed_in(client, farm, "siteowner_b_ro").get(f"/commands/{on_b.pk}/")) == set()


def test_a_critical_command_shows_approve_only_to_owners_and_admins(client, farm):
    command = propose(farm, who="admin")
    Command.objects.filter(pk=command.pk).update(owner_admin_only=True, risk_tier="CRITICAL", approvals_required=2)
    assert buttons(signed_in(client, farm, "siteowner_a").get(f"/commands/{command.pk}/")) == {"deny", "cancel"}
    assert buttons(signed_in(client, farm, "owner").get(f"/commands/{command.pk}/")) == {"approve", "deny", "cancel"}


def test_approve_through_the_page_and_refusals_come_back_as_messages(client, farm):
    command = propose(farm)
    signed_in(client, farm, "siteowner_a")
    response = client.post(f"/commands/{command.pk}/approve/", {"reason": ""}, follow=True)
    assert response.redirect_chain[-1][0] == f"/commands/{command.pk}/"
    assert any("Nobody decides on their own command" in m for m in messages_of(response))
    assert Command.objects.get(pk=command.pk).status == S.PENDING_APPROVAL

    signed_in(client, farm, "owner")
    response = client.post(f"/commands/{command.pk}/approve/", {"reason": "looks fine"}, follow=True)
    assert any("approval was recorded" in m for m in messages_of(response))
    command.refresh_from_db()
    assert command.status == S.APPROVED
    assert command.approvals.get(approver=farm.users["owner"]).reason == "looks fine"
    page = response.content.decode()
    assert 'data-status="APPROVED"' in page and "1 of 1 approvals so far" in page

    again = client.post(f"/commands/{command.pk}/approve/", follow=True)  # a second click: no 500
    assert again.status_code == 200
    assert any("already decided" in m for m in messages_of(again))


def test_deny_needs_a_reason(client, farm):
    command = propose(farm)
    signed_in(client, farm, "owner")
    response = client.post(f"/commands/{command.pk}/deny/", {"reason": "   "}, follow=True)
    assert any("Say why" in m for m in messages_of(response))
    assert Command.objects.get(pk=command.pk).status == S.PENDING_APPROVAL
    client.post(f"/commands/{command.pk}/deny/", {"reason": "not during the peak"})
    command.refresh_from_db()
    assert (command.status, command.status_reason) == (S.DENIED, "not during the peak")


def test_cancel_then_cancel_again_is_a_message_not_an_error(client, farm):
    command = propose(farm)
    signed_in(client, farm, "siteowner_a")
    client.post(f"/commands/{command.pk}/cancel/", {"reason": "wrong miner"})
    assert Command.objects.get(pk=command.pk).status == S.CANCELLED
    response = client.post(f"/commands/{command.pk}/cancel/", follow=True)
    assert response.status_code == 200
    assert any("no longer in a state" in m for m in messages_of(response))


def test_rollback_through_the_page_proposes_the_inverse(client, farm):
    fan = propose(farm, type="SET_FAN", params={"percent": 100})  # LOW: runs without approval
    Command.objects.filter(pk=fan.pk).update(status=S.COMPLETED)
    fan.targets.update(result_status="ok", before_state={"edge": {"fan_percent": 60}})
    signed_in(client, farm, "owner")
    response = client.post(f"/commands/{fan.pk}/rollback/", {"reason": "too loud"}, follow=True)
    inverse = Command.objects.get(rollback_of=fan)
    assert (inverse.command_type, inverse.params) == ("SET_FAN", {"percent": 60})
    assert response.redirect_chain[-1][0] == f"/commands/{inverse.pk}/"
    assert any(f"#{inverse.pk}" in m for m in messages_of(response))
    again = client.post(f"/commands/{fan.pk}/rollback/", follow=True)  # one is under way: a message, no 500
    assert again.status_code == 200 and Command.objects.filter(rollback_of=fan).count() == 1
    assert any("Nothing was changed" in m for m in messages_of(again))
    html = client.get(f"/commands/{fan.pk}/").content.decode()
    assert f'href="/commands/{inverse.pk}/" data-testid="rollback-link"' in html


def test_rollback_button_calls_the_rollback_service(client, farm, monkeypatch):
    command = propose(farm)
    Command.objects.filter(pk=command.pk).update(status=S.COMPLETED)
    inverse = propose(farm, key="client-x")
    calls = []

    def fake_rollback(*, command, actor, reason=""):
        calls.append((command.pk, actor.username, reason))
        return services.Proposed(inverse, created=True)

    monkeypatch.setattr(pages, "rollback_service", fake_rollback)
    signed_in(client, farm, "owner")
    response = client.post(f"/commands/{command.pk}/rollback/", {"reason": "undo"}, follow=True)
    assert calls == [(command.pk, "owner", "undo")]
    assert response.redirect_chain[-1][0] == f"/commands/{inverse.pk}/"
    assert any(f"#{inverse.pk}" in m for m in messages_of(response))


def test_rollback_refusals_are_messages(client, farm, monkeypatch):
    from hashinsight.core.errors import DomainError

    command = propose(farm)
    Command.objects.filter(pk=command.pk).update(status=S.COMPLETED)
    signed_in(client, farm, "owner")

    def refuse(**kwargs):
        raise DomainError("no_inverse", "Nothing was recorded before this command ran.", status=409)

    monkeypatch.setattr(pages, "rollback_service", refuse)
    response = client.post(f"/commands/{command.pk}/rollback/", follow=True)
    assert response.status_code == 200
    assert any("Nothing was recorded before" in m for m in messages_of(response))
    assert Command.objects.get(pk=command.pk).status == S.COMPLETED


def test_detail_shows_risk_breakdown_approvers_targets_and_audit_trail(client, farm):
    command = propose(farm)
    target = command.targets.get()
    target.result_status, target.result_message = "ok", "rebooted"
    target.verification, target.verification_detail = Verification.NOT_SEEN, "hashrate unchanged after 10 min"
    target.before_state = {"status": "hashing", "power_w": 3250, "edge": {"fan_percent": 60, "power_mode": "normal"}}
    target.save()
    signed_in(client, farm, "owner")
    html = client.get(f"/commands/{command.pk}/").content.decode()
    factors = re.findall(r'data-factor="(\w+)"', html)
    assert factors == [item["factor"] for item in command.risk_breakdown["breakdown"]]
    contributions = re.findall(r'data-testid="risk-factor".*?</tr>', html, re.S)
    assert all(
        item["contribution"] in row
        for item, row in zip(command.risk_breakdown["breakdown"], contributions, strict=True)
    )
    assert "One approver who manages the site" in html
    assert "0 of 1 approvals so far" in html
    assert "rebooted" in html and "hashrate unchanged after 10 min" in html
    assert 'data-verification="not_seen"' in html
    assert "power: 3250 W" in html and "fan: 60 %" in html and "power mode: normal" in html
    assert 'data-testid="audit-event"' in html and "command.proposed" in html
    assert f'href="/audit/?q=command:{command.pk}"' in html  # owners see the chain
    assert 'data-testid="nav-commands"' in html and 'data-testid="approve-form"' in html  # both, not one for the other
    signed_in(client, farm, "siteowner_a")
    html = client.get(f"/commands/{command.pk}/").content.decode()
    assert "command.proposed" in html and "/audit/?q=" not in html  # the trail, not the chain page


def test_targets_csv_of_one_command(client, farm):
    command = propose(farm)
    signed_in(client, farm, "owner")
    response = client.get(f"/commands/{command.pk}/?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["Serial", "Miner id", "Result"]
    assert rows[1][0] == farm.miners[("site-a", "own")].serial


# ---------------------------------------------------------------------------------------------------
# The list: filters, tab, keyset pages, CSV, rows


def listed_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-command-id="(\d+)"', response.content.decode())]


def test_filters_and_the_pending_my_approval_tab(client, farm):
    mine = propose(farm)  # siteowner_a's, waiting
    other = propose(farm, who="owner", key="client-x")  # owner's, waiting for siteowner_a
    denied = propose(farm, who="owner", key="client-y")
    services.command_deny(command=denied, actor=farm.users["admin"], reason="no")
    on_b = propose(farm, who="owner", site="site-b")
    signed_in(client, farm, "siteowner_a")
    assert listed_ids(client.get("/commands/")) == [denied.pk, other.pk, mine.pk]
    tab = client.get("/commands/?view=mine")
    assert listed_ids(tab) == [other.pk]
    assert b'data-testid="awaiting-count">1<' in tab.content
    assert listed_ids(client.get("/commands/?status=DENIED")) == [denied.pk]
    assert listed_ids(client.get(f"/commands/?proposer={farm.users['siteowner_a'].pk}")) == [mine.pk]
    assert listed_ids(client.get("/commands/?verification=none")) == [denied.pk, other.pk, mine.pk]
    Command.objects.filter(pk=other.pk).update(verification=Verification.VERIFIED)
    assert listed_ids(client.get("/commands/?verification=verified")) == [other.pk]
    assert listed_ids(client.get("/commands/?type=MINER_RESTART&risk=MEDIUM")) == [denied.pk, other.pk, mine.pk]
    assert listed_ids(client.get("/commands/?risk=LOW")) == []
    today = timezone.now().date().isoformat()
    assert len(listed_ids(client.get(f"/commands/?start={today}&end={today}"))) == 3
    # A hidden site is not a choice: refused like a missing one, and said so.
    refused = client.get(f"/commands/?site={farm.site_b.pk}")
    assert b'data-testid="table-problem"' in refused.content and on_b.pk not in listed_ids(refused)
    signed_in(client, farm, "owner")
    assert listed_ids(client.get(f"/commands/?site={farm.site_b.pk}")) == [on_b.pk]
    assert listed_ids(client.get("/commands/?view=mine")) == [mine.pk]  # not the owner's own


def test_keyset_pages_forward_and_back_in_each_sort(client, farm, monkeypatch):
    monkeypatch.setattr(pages.CommandTable, "page_size", 2)
    made = [propose(farm, who="owner", key=key, site=site) for site in ("site-a", "site-b")
            for key in ("own", "client-x", "client-y")]  # fmt: skip
    Command.objects.filter(pk=made[1].pk).update(risk_score="0.9000")
    signed_in(client, farm, "owner")
    for sort in ("-id", "id", "risk", "-risk", "site", "-status", "type"):
        expected = [
            c.pk
            for c in pages.CommandTable.keyset_order(None, Command.objects.all(), sort=sort)  # the export's order
        ]
        seen, url, pages_seen = [], f"/commands/?sort={sort}", []
        while url:
            response = client.get(url)
            assert b'data-testid="table-problem"' not in response.content, (sort, url)
            ids = listed_ids(response)
            pages_seen.append((url, ids))
            seen += ids
            found = re.search(r'href="(\?[^"]*)" rel="next"', response.content.decode())
            url = "/commands/" + found.group(1).replace("&amp;", "&") if found else None
        assert seen == expected, sort
        # Previous from the last page shows the page before it.
        last = client.get(pages_seen[-1][0])
        previous = re.search(r'href="(\?[^"]*)" rel="prev"', last.content.decode())
        assert listed_ids(client.get("/commands/" + previous.group(1).replace("&amp;", "&"))) == pages_seen[-2][1]
    assert b'data-testid="table-problem"' in client.get("/commands/?cursor=garbage").content
    import base64

    for forged in ({"k": "risk", "d": False, "v": "NaN", "i": 1}, {"k": "risk", "d": False, "v": "abc", "i": 1},
                   {"k": "site", "d": False, "v": 5, "i": 1}):  # fmt: skip
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        response = client.get(f"/commands/?sort={forged['k']}&cursor={cursor}")
        assert response.status_code == 200  # a forged cursor is a problem shown or a page, never a 500


def test_csv_exports_the_filtered_rows_with_units(client, farm):
    a = propose(farm)
    propose(farm, who="owner", site="site-b")
    signed_in(client, farm, "owner")
    response = client.get(f"/commands/?format=csv&site={farm.site_a.pk}")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [int(r["Id"]) for r in rows] == [a.pk]
    assert rows[0]["Targets (miners)"] == "1" and rows[0]["Risk score (0–1)"] == str(a.risk_score)
    assert rows[0]["Status"] == "Pending approval" and rows[0]["Proposer"] == "siteowner_a"
    assert client.get("/commands/?format=csv&status=NOPE").status_code == 400  # never a quiet other export


def test_row_endpoint_answers_204_when_the_row_left_the_filters(client, farm):
    command = propose(farm)
    signed_in(client, farm, "owner")
    row = client.get(f"/commands/{command.pk}/row?status=PENDING_APPROVAL")
    assert row.status_code == 200 and row.content.decode().startswith("<tr")
    services.command_approve(command=command, actor=farm.users["owner"])
    assert client.get(f"/commands/{command.pk}/row?status=PENDING_APPROVAL").status_code == 204
    assert b'data-status="APPROVED"' in client.get(f"/commands/{command.pk}/row").content


# ---------------------------------------------------------------------------------------------------
# Proposing


def test_propose_through_the_page(client, farm):
    signed_in(client, farm, "siteowner_a")
    serial = farm.miners[("site-a", "own")].serial
    body = {"site": farm.site_a.pk, "type": "SET_FAN", "fan_percent": "70", "target_kind": "serials",
            "serials": f"{serial}\n", "expires_in_min": "30"}  # fmt: skip
    response = client.post("/commands/new/", body, follow=True)
    command = Command.objects.get()
    assert response.redirect_chain[-1][0] == f"/commands/{command.pk}/"
    assert (command.command_type, command.params, command.proposer.username) == (
        "SET_FAN",
        {"percent": 70},
        "siteowner_a",
    )
    assert 25 <= (command.expires_at - timezone.now()).total_seconds() / 60 <= 30


def test_propose_a_curtailment_of_a_zone(client, farm):
    signed_in(client, farm, "owner")
    start = timezone.now().replace(microsecond=0, second=0) + timedelta(hours=1)
    end = start + timedelta(hours=2)
    body = {"site": farm.site_a.pk, "type": "CURTAIL", "curtail_by": "percent", "curtail_percent": "50",
            "curtail_start": start.strftime("%Y-%m-%dT%H:%M"), "curtail_end": end.strftime("%Y-%m-%dT%H:%M"),
            "curtail_mode": "soft", "target_kind": "zone", "zone": farm.zone_a.pk}  # fmt: skip
    response = client.post("/commands/new/", body)
    assert response.status_code == 302, response.content.decode()[:2000]
    command = Command.objects.get()
    assert command.params["percent"] == 50 and command.params["start"] == start.strftime("%Y-%m-%dT%H:%M:00Z")
    assert command.targets.count() == 3  # the zone's three miners


def test_bad_parameters_are_shown_on_the_form(client, farm):
    signed_in(client, farm, "siteowner_a")
    body = {"site": farm.site_a.pk, "type": "POOL_SET", "pool_url": "http://pool", "pool_worker": "w1",
            "target_kind": "site"}  # fmt: skip
    response = client.post("/commands/new/", body)
    assert response.status_code == 200 and not Command.objects.exists()
    assert response.context["form"].errors["pool_url"]
    unknown = client.post("/commands/new/", {**body, "type": "SET_FAN", "fan_percent": "50", "target_kind": "serials",
                                             "serials": "NOPE-1"})  # fmt: skip
    assert unknown.status_code == 200 and b'data-testid="form-error"' in unknown.content


def test_a_read_only_site_owner_has_nothing_to_propose_on(client, farm):
    signed_in(client, farm, "siteowner_b_ro")
    response = client.get("/commands/new/")
    assert b'data-testid="no-sites"' in response.content


SCRIPT = Path(settings.BASE_DIR) / "static" / "js" / "commands-propose.js"


def test_the_preview_script_and_the_page_agree(client, farm):
    """Every field the script reads is on the page, every label it shows comes from the page, and it posts to
    the preview endpoint with the CSRF header."""
    signed_in(client, farm, "owner")
    html = client.get("/commands/new/").content.decode()
    script = SCRIPT.read_text()
    read = set(re.findall(r'value\("(\w+)"\)', script)) | set(re.findall(r'field\("(\w+)"\)', script))
    on_page = set(re.findall(r'data-field="(\w+)"', html))
    assert read and read <= on_page, read - on_page
    labels = json.loads(re.search(r'data-labels="([^"]*)"', html).group(1).replace("&quot;", '"').replace("&amp;", "&"))
    used = set(re.findall(r"labels\.(\w+)", script))
    assert used <= set(labels), used - set(labels)
    assert 'data-preview-url="/api/v1/commands/preview"' in html
    assert '"X-CSRFToken": token' in script and 'credentials: "same-origin"' in script
    for part in ("site: site", "type: type", "params: params", "targets: targets"):
        assert part in script  # the body's keys, as ProposeForm.proposal() builds them


def test_the_preview_endpoint_takes_the_session_and_the_csrf_header(farm):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(farm.users["siteowner_a"])
    browser.get("/commands/new/")  # sets the CSRF cookie, as the page does
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    body = {"site": farm.site_a.pk, "type": "HASHING_DISABLE", "params": {},
            "targets": {"serials": [farm.miners[("site-a", "own")].serial]}}  # fmt: skip
    refused = browser.post("/api/v1/commands/preview", json.dumps(body), content_type="application/json")
    assert refused.status_code == 403  # no header, no preview
    response = browser.post(
        "/api/v1/commands/preview", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200, response.content
    preview = response.json()
    assert {"score", "tier", "approvals_required", "owner_admin_only", "breakdown", "refusals"} <= set(preview)
    assert preview["tier"] == "HIGH" and preview["approvals_required"] == 2
    assert [f["factor"] for f in preview["breakdown"]["breakdown"]][:3] == ["action", "targets", "power"]
    assert not Command.objects.exists()
    bad = browser.post(
        "/api/v1/commands/preview",
        json.dumps({**body, "type": "SET_FAN", "params": {"percent": 300}}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "percent"


def test_the_form_builds_the_body_the_script_builds(farm):
    """ProposeForm.proposal() for each type and kind of targets (the script mirrors it; the browser test runs it)."""
    sites, zones = pages._propose_choices(farm.users["owner"])
    cases = [
        ({"type": "POOL_SET", "pool_url": "stratum+tcp://p:3333", "pool_worker": "w", "target_kind": "site"},
         {"url": "stratum+tcp://p:3333", "worker": "w"}, {"site": farm.site_a.pk}),
        ({"type": "SET_FAN", "fan_percent": "40", "target_kind": "serials", "serials": "A, B;C\nD"},
         {"percent": 40}, {"serials": ["A", "B", "C", "D"]}),
        ({"type": "POWER_MODE", "power_mode": "low", "target_kind": "zone", "zone": str(farm.zone_a.pk)},
         {"mode": "low"}, {"zone": farm.zone_a.pk}),
        ({"type": "CURTAIL", "curtail_by": "kw", "curtail_kw": "12.5", "curtail_start": "2030-01-01T01:00",
          "curtail_end": "2030-01-01T03:00", "curtail_mode": "hard", "target_kind": "site"},
         {"kw": "12.5", "start": "2030-01-01T01:00Z", "end": "2030-01-01T03:00Z", "mode": "hard"},
         {"site": farm.site_a.pk}),
    ]  # fmt: skip
    for data, params, targets in cases:
        form = pages.ProposeForm({"site": farm.site_a.pk, **data}, sites=sites, zones=zones)
        assert form.is_valid(), form.errors
        assert form.proposal() == {"site": farm.site_a.pk, "type": data["type"], "params": params, "targets": targets}


# ---------------------------------------------------------------------------------------------------
# Live frames


def test_frames_go_to_the_site_and_all_groups_only(monkeypatch):
    sent = []
    monkeypatch.setattr("commands.handlers.group_send_many", lambda messages: sent.extend(messages))
    now = timezone.now()
    pairs = [
        (CommandEvent(command_id=7, site_id=3, status="PENDING_APPROVAL", command_type="SET_FAN"),
         SimpleNamespace(pk="e2", event_type="command.updated", created_at=now)),
        (CommandEvent(command_id=7, site_id=3, status="PENDING", command_type="SET_FAN"),
         SimpleNamespace(pk="e1", event_type="command.created", created_at=now - timedelta(seconds=1))),
    ]  # fmt: skip
    push_command(pairs)
    assert sorted(group for group, _ in sent) == ["alerts.all", "site.3"]
    for _, message in sent:
        assert message["type"] == "command.batch"
        assert [f["id"] for f in message["frames"]] == ["e1", "e2"]  # in order
        assert message["frames"][0] == {
            "type": "command",
            "id": "e1",
            "event_type": "command.created",
            "command": {"command_id": 7, "site_id": 3, "status": "PENDING", "command_type": "SET_FAN",
                        "previous_status": None, "risk_tier": None, "approvals": 0, "approvals_required": 0,
                        "verification": ""},
        }  # fmt: skip


LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS=LAYERS)
async def test_a_hosting_clients_socket_never_receives_command_frames(farm):
    from telemetry.tests.test_consumers import connect, raise_alert, token_for

    sockets = {}
    for who in ("client_x", "siteowner_a", "siteowner_b_ro", "owner"):
        comm, ok, _ = await connect(await token_for(farm.users[who]))
        assert ok
        assert (await comm.receive_json_from())["type"] == "hello"
        sockets[who] = comm

    # Site A, on a miner of client X's own: still not client X's to see.
    command = await sync_to_async(propose)(farm, key="client-x")
    for who in ("siteowner_a", "owner"):
        frame = await sockets[who].receive_json_from(timeout=3)
        assert frame["type"] == "command" and frame["command"]["command_id"] == command.pk
        assert frame["event_type"] == "command.created"

    # Frames arrive in order: the next frame each socket receives shows nothing it may not see came before.
    alert = await raise_alert(farm, ("site-a", "client-x"), message="marker")
    got = await sockets["client_x"].receive_json_from(timeout=3)
    assert got["type"] == "alert" and got["alert"]["alert_id"] == alert.pk
    on_b = await sync_to_async(propose)(farm, who="owner", site="site-b")
    got = await sockets["siteowner_b_ro"].receive_json_from(timeout=3)
    assert got["type"] == "command" and got["command"]["command_id"] == on_b.pk  # not site A's
    assert await sockets["client_x"].receive_nothing(timeout=0.5)
    for comm in sockets.values():
        await comm.disconnect()


def test_fields_of_another_type_do_not_block_the_form(farm):
    sites, zones = pages._propose_choices(farm.users["owner"])
    data = {"site": farm.site_a.pk, "type": "MINER_RESTART", "fan_percent": "300", "curtail_kw": "abc",
            "target_kind": "site", "zone": "999999"}  # fmt: skip
    form = pages.ProposeForm(data, sites=sites, zones=zones)
    assert form.is_valid(), form.errors
    assert form.proposal()["params"] == {}
    form = pages.ProposeForm({**data, "type": "SET_FAN"}, sites=sites, zones=zones)
    assert not form.is_valid() and list(form.errors) == ["fan_percent"]
