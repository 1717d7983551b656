"""The response profiles and programmes API: CRUD, 400s with the error shape, list filters, sort and CSV, the secret
in the create and rotate answers only (no-store), never in a later read, list or CSV; per-role answers."""

from __future__ import annotations

import json

import pytest

from intelligence.models import DemandResponseProgram, ResponseProfile

pytestmark = pytest.mark.django_db
PROFILES = "/api/v1/curtailment/profiles"
PROGRAMS = "/api/v1/curtailment/programs"


def call(api, user, method, url, body=None):
    api.force_authenticate(user)
    if method == "get":
        return api.get(url)
    return getattr(api, method)(url, json.dumps(body or {}), content_type="application/json")


def test_profile_crud(api, farm):
    so = farm.users["siteowner_a"]
    r = call(api, so, "post", PROFILES, {"site": farm.site_a.pk, "name": "Shed 500", "mode": "kw_reduction",
                                         "target_kw": "500", "is_default": True})  # fmt: skip
    assert r.status_code == 201, r.json()
    pk = r.json()["id"]
    assert r.json()["target_kw"] == "500.000" and r.json()["is_default"] is True
    r = call(api, so, "patch", f"{PROFILES}/{pk}", {"restore_batch_size": 10})
    assert r.status_code == 200 and r.json()["restore_batch_size"] == 10 and r.json()["name"] == "Shed 500"
    r = call(api, so, "get", f"{PROFILES}/{pk}")
    assert r.status_code == 200 and r.json()["restore_batch_size"] == 10
    r2 = call(api, so, "post", PROFILES, {"site": farm.site_a.pk, "name": "Stop"})
    r = call(api, so, "post", f"{PROFILES}/{r2.json()['id']}/default")
    assert r.status_code == 200 and r.json()["is_default"] is True
    assert not ResponseProfile.objects.get(pk=pk).is_default
    r = call(api, so, "delete", f"{PROFILES}/{pk}")
    assert r.status_code == 204 and not ResponseProfile.objects.filter(pk=pk).exists()


def test_profile_bad_input_is_400_with_code_and_field(api, farm):
    bad = {"site": farm.site_a.pk, "name": "x", "min_duration_minutes": 60, "max_duration_minutes": 5}
    r = call(api, farm.users["owner"], "post", PROFILES, bad)
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "min_above_max" and body["details"]["field"] == "min_duration_minutes"
    r = call(api, farm.users["owner"], "post", PROFILES, {"site": farm.site_a.pk, "name": "x", "mode": "kw_reduction"})
    assert r.status_code == 400 and r.json()["error_code"] == "required"
    assert not ResponseProfile.objects.exists()


def test_profile_list_filters_sort_and_csv(api, farm):
    owner = farm.users["owner"]
    for site, name, mode in ((farm.site_a, "B", "full_stop"), (farm.site_a, "A", "kw_reduction"),
                             (farm.site_b, "C", "full_stop")):  # fmt: skip
        extra = {"target_kw": 5} if mode == "kw_reduction" else {}
        assert (
            call(api, owner, "post", PROFILES, {"site": site.pk, "name": name, "mode": mode, **extra}).status_code
            == 201
        )
    r = call(api, owner, "get", f"{PROFILES}?site={farm.site_a.pk}&sort=name")
    assert [x["name"] for x in r.json()["results"]] == ["A", "B"] and r.json()["count"] == 2
    r = call(api, owner, "get", f"{PROFILES}?mode=kw_reduction")
    assert [x["name"] for x in r.json()["results"]] == ["A"]
    r = call(api, owner, "get", f"{PROFILES}?sort=-name")
    assert [x["name"] for x in r.json()["results"]] == ["C", "B", "A"]
    r = call(api, owner, "get", f"{PROFILES}?sort=nonsense")
    assert r.status_code == 400
    api.force_authenticate(owner)
    r = api.get(f"{PROFILES}?format=csv&site={farm.site_a.pk}")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert "Reduction (kW)" in lines[0] and len(lines) == 3
    # The read-only site owner of B sees only B's profile.
    r = call(api, farm.users["siteowner_b_ro"], "get", PROFILES)
    assert [x["name"] for x in r.json()["results"]] == ["C"]


def test_programme_secret_never_logged(api, farm, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    owner = farm.users["owner"]
    p = call(api, owner, "post", PROFILES, {"site": farm.site_a.pk, "name": "Stop"}).json()
    created = call(api, owner, "post", PROGRAMS, {"site": farm.site_a.pk, "name": "Logged?", "profile": p["id"]}).json()
    rotated = call(api, owner, "post", f"{PROGRAMS}/{created['id']}/rotate").json()
    for secret in (created["secret"], rotated["secret"]):
        assert secret not in caplog.text


def test_programme_secret_shown_once(api, farm):
    owner = farm.users["owner"]
    p = call(api, owner, "post", PROFILES, {"site": farm.site_a.pk, "name": "Stop"}).json()
    r = call(api, owner, "post", PROGRAMS, {"site": farm.site_a.pk, "name": "ERCOT ERS", "profile": p["id"]})
    assert r.status_code == 201, r.json()
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    secret = body["secret"]
    assert len(secret) == 43 and "X-HashInsight-Signature" in body["signature"]
    assert body["webhook_url"].endswith("/api/v1/curtailment/dr/ercot-ers")
    pk = body["id"]
    assert secret not in DemandResponseProgram.objects.get(pk=pk).secret_sealed
    later = [call(api, owner, "get", f"{PROGRAMS}/{pk}").content, call(api, owner, "get", PROGRAMS).content,
             b"".join(call(api, owner, "get", f"{PROGRAMS}?format=csv").streaming_content)]  # fmt: skip
    for content in later:
        assert secret.encode() not in content and b'"secret"' not in content
    r = call(api, owner, "post", f"{PROGRAMS}/{pk}/rotate")
    assert r.status_code == 200 and r.json()["secret"] != secret and r["Cache-Control"] == "no-store"
    r = call(api, owner, "patch", f"{PROGRAMS}/{pk}", {"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    r = call(api, owner, "get", f"{PROGRAMS}?is_active=false")
    assert r.json()["count"] == 1
    r = call(api, owner, "delete", f"{PROFILES}/{p['id']}")
    assert r.status_code == 409 and r.json()["error_code"] == "profile_in_use"
    assert call(api, owner, "delete", f"{PROGRAMS}/{pk}").status_code == 204


USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest", "anonymous"]
API = {
    #                                            owner admin so_a so_b_ro client_x customer guest anonymous
    ("get", PROFILES):                           (200, 200, 200, 200, 403, 403, 403, 401),
    ("get", PROFILES + "/{a}"):                  (200, 200, 200, 404, 403, 403, 403, 401),
    ("get", PROFILES + "/{b}"):                  (200, 200, 404, 200, 403, 403, 403, 401),
    ("patch", PROFILES + "/{b}"):                (200, 200, 404, 403, 403, 403, 403, 401),
    ("post", PROFILES + "/{a}/default"):         (200, 200, 200, 404, 403, 403, 403, 401),
    ("get", PROGRAMS):                           (200, 200, 200, 200, 403, 403, 403, 401),
    ("get", PROGRAMS + "/{prog_b}"):             (200, 200, 404, 200, 403, 403, 403, 401),
    ("post", PROGRAMS + "/{prog_b}/rotate"):     (200, 200, 404, 403, 403, 403, 403, 401),
}  # fmt: skip


@pytest.mark.parametrize("username", USERS)
def test_api_answers_each_role_as_written(api, farm, username):
    from intelligence import response_profiles as rp

    owner = farm.users["owner"]
    a = rp.profile_create(actor=owner, data={"site": farm.site_a.pk, "name": "A"})
    b = rp.profile_create(actor=owner, data={"site": farm.site_b.pk, "name": "B"})
    prog_b, _ = rp.program_create(actor=owner, data={"site": farm.site_b.pk, "name": "PB", "profile": b.pk})
    if username != "anonymous":
        api.force_authenticate(farm.users[username])
    for (method, template), answers in API.items():
        url = template.format(a=a.pk, b=b.pk, prog_b=prog_b.pk)
        body = {"restore_batch_size": 5} if method == "patch" else {}
        if method == "get":
            response = api.get(url)
        else:
            response = getattr(api, method)(url, json.dumps(body), content_type="application/json")
        assert response.status_code == answers[USERS.index(username)], (method, url, response.content[:200])
