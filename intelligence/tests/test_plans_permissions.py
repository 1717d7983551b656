"""Every curtailment plan page and endpoint, for every role, as written by hand (the rows proposed for
hashinsight/tests/test_permission_matrix.py): CURTAILMENT READ reads, FULL plans and sends, a hidden site's plan is
a 404, a read-only grant a 403 on writes; clients, app customers and guests have no CURTAILMENT."""

from __future__ import annotations

import json

import pytest

from intelligence import curtailment_plans as plans
from intelligence.tests.test_plans_api import with_prices

pytestmark = pytest.mark.django_db
LOGIN = "login"
USERS = ["owner", "admin", "siteowner_a", "siteowner_b_ro", "client_x", "customer", "guest", "anonymous"]
PAGES = {
    #                                      owner admin  so_a  so_b_ro client_x customer guest anonymous
    "/curtailment/plans/":                 (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/plans/?format=csv":      (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/planner/":               (200,  200,  200,  200,   403,     403,     403,  LOGIN),
    "/curtailment/plans/{plan_a}/":        (200,  200,  200,  404,   403,     403,     403,  LOGIN),
    "/curtailment/plans/{plan_b}/":        (200,  200,  404,  200,   403,     403,     403,  LOGIN),
}  # fmt: skip
API = {
    #                                            owner admin  so_a  so_b_ro client_x customer guest anonymous
    ("get", "/api/v1/curtailment/plans"):        (200,  200,  200,  200,   403,     403,     403,  401),
    ("get", "/api/v1/curtailment/plans/{plan_a}"): (200, 200, 200,  404,   403,     403,     403,  401),
    ("get", "/api/v1/curtailment/plans/{plan_b}"): (200, 200, 404,  200,   403,     403,     403,  401),
    ("post", "/api/v1/curtailment/plans/{plan_b}/send"): (200, 200, 404, 403, 403,   403,     403,  401),
}  # fmt: skip


@pytest.fixture
def planned(farm):
    farm = with_prices(farm)
    farm.plan_a = plans.plan_create(actor=farm.users["owner"], data={"site": farm.site_a.pk, "start": farm.start})
    farm.plan_b = plans.plan_create(actor=farm.users["owner"], data={"site": farm.site_b.pk, "start": farm.start})
    return farm


@pytest.mark.parametrize("username", USERS)
def test_pages_answer_each_role_as_written(client, planned, username):
    if username != "anonymous":
        client.force_login(planned.users[username])
    for template, answers in PAGES.items():
        url = template.format(plan_a=planned.plan_a.pk, plan_b=planned.plan_b.pk)
        response = client.get(url)
        expected = answers[USERS.index(username)]
        if expected == LOGIN:
            assert response.status_code == 302 and "/login/" in response["Location"], url
        else:
            assert response.status_code == expected, url


@pytest.mark.parametrize("username", USERS)
def test_api_answers_each_role_as_written(api, planned, username):
    if username != "anonymous":
        api.force_authenticate(planned.users[username])
    for (method, template), answers in API.items():
        url = template.format(plan_a=planned.plan_a.pk, plan_b=planned.plan_b.pk)
        response = api.get(url) if method == "get" else api.post(url, json.dumps({}), content_type="application/json")
        assert response.status_code == answers[USERS.index(username)], (method, url, response.content[:200])
