"""The solver's outcome as pages show it: a phrase in the reader's language made from the report's structured fields
(method, optimal, gap, time limit), never CBC's English status, which stays available as the element's title."""

from __future__ import annotations

import re

import pytest

from intelligence.algorithms.optimizer import SiteModel, plan_curtailment
from intelligence.solver_outcome import solver_outcome
from intelligence.tests.test_optimizer import HASHPRICE, A, B, coupled_inputs, coupled_site
from intelligence.tests.test_plans_pages import make, priced  # noqa: F401 - pytest fixture

CBC_OPTIMAL = {"status": "Optimal solution found", "optimal": True, "gap_rel": 0.0, "method": "milp"}
CBC_WITHIN = {"status": "Optimal solution found (within gap tolerance)", "optimal": True, "gap_rel": 0.0004,
              "method": "milp_from_start"}  # fmt: skip
CBC_TIME = {"status": "Stopped on time limit", "optimal": False, "gap_rel": 0.0095, "method": "milp",
            "time_limited": True}  # fmt: skip
ROUNDED = {"status": "Stopped on time limit (the rounded relaxation; no time for CBC's search)", "optimal": False,
           "gap_rel": 0.03, "method": "rounded_lp", "time_limited": True}  # fmt: skip


@pytest.mark.parametrize(
    "solver, words",
    [
        (CBC_OPTIMAL, "Optimal"),
        ({**CBC_OPTIMAL, "gap_rel": None}, "Optimal"),
        (CBC_WITHIN, "Within the gap limit (gap 0.04 %)"),
        (CBC_TIME, "Best found in the time limit (gap 0.95 %)"),
        ({**CBC_TIME, "gap_rel": None}, "Best found in the time limit (gap unknown)"),
        (ROUNDED, "Rounded relaxation (no time for the search; gap 3.00 %)"),
        ({**ROUNDED, "time_limited": False}, "Rounded relaxation (the search found nothing better; gap 3.00 %)"),
        ({**CBC_TIME, "status": "Stopped on iterations or time", "time_limited": False},
         "Stopped before proving the optimum (gap 0.95 %)"),
        # A plan stored before the report had time_limited: read from CBC's status.
        ({k: v for k, v in CBC_TIME.items() if k != "time_limited"}, "Best found in the time limit (gap 0.95 %)"),
        ({}, ""),
        (None, ""),
    ],
)  # fmt: skip
def test_the_phrase_comes_from_the_structured_fields(solver, words):
    assert solver_outcome(solver) == words


def test_the_optimizer_reports_whether_the_time_limit_stopped_it():
    proven = plan_curtailment(SiteModel(groups=(A, B)), [30] * 24, HASHPRICE, time_limit_s=3, gap_rel=0.01)
    assert proven.solver.time_limited is False and proven.as_dict()["solver"]["time_limited"] is False
    site = coupled_site(seed=5)
    prices, cap = coupled_inputs(site, 48, seed=5)
    rushed = plan_curtailment(site, prices, 0.055, cap_kw=cap, time_limit_s=0.01)
    assert rushed.solver.method == "rounded_lp" and rushed.solver.time_limited is True
    assert solver_outcome(rushed.as_dict()["solver"]).startswith("Rounded relaxation (no time for the search; gap ")


def _outcome_cell(html: str) -> re.Match:
    return re.search(r'<dd class="col-6" data-testid="solver-outcome" title="([^"]*)">([^<]*)</dd>', html)


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_plan_page_shows_the_phrase_and_keeps_cbcs_words_as_the_title(client, priced, lang):  # noqa: F811
    plan = make(priced)
    plan.solver = {**plan.solver, **CBC_TIME}
    plan.save(update_fields=["solver"])
    client.force_login(priced.users["siteowner_a"])
    html = client.get(f"/curtailment/plans/{plan.pk}/", HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    cell = _outcome_cell(html)
    assert cell is not None, "the solver's outcome cell"
    assert cell.group(1).endswith("Stopped on time limit")
    phrase = {"en": "Best found in the time limit (gap 0.95 %)", "zh-hans": "时限内找到的最佳解（间隙 0.95 %）"}[lang]
    assert cell.group(2) == phrase
    assert html.count("Stopped on time limit") == 1  # only in the title


@pytest.mark.django_db
def test_the_admin_list_shows_the_phrase(client, priced):  # noqa: F811
    plan = make(priced)
    plan.solver = {**plan.solver, **ROUNDED}
    plan.save(update_fields=["solver"])
    priced.users["owner"].is_staff = True
    priced.users["owner"].save(update_fields=["is_staff"])
    client.force_login(priced.users["owner"])
    html = client.get("/admin/intelligence/curtailmentplan/").content.decode()
    assert ">Rounded relaxation (no time for the search; gap 3.00 %)</span>" in html
    assert 'title="CBC: Stopped on time limit (the rounded relaxation; no time for CBC&#x27;s search)"' in html
