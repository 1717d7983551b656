"""Proof pages in Chromium: a hosting client downloads its statement's proof, verifies the file on "Verify a
statement" (OK), then a copy with one changed byte (FAILED at the document check); the roots page's copy button;
every page at 1280 and 390 px without sideways scrolling or a Content-Security-Policy violation. Screenshots go to
$PROOFS_SHOTS (default /tmp/proofs-shots) for a person to look at."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from hashinsight.billing import proofs
from hashinsight.billing.tests.test_proofs_support import issued_invoice, statement_bytes, yesterday
from hashinsight.portal.tests.test_browser import browser, page  # noqa: F401 - pytest fixtures
from hashinsight.portal.tests.test_csp import RECORD_VIOLATIONS
from intelligence.tests.test_plans_browser import login, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("PROOFS_SHOTS", "/tmp/proofs-shots"))


@pytest.fixture
def closed(farm):
    inv_x = issued_invoice(customer=farm.client_x, site=farm.site_a, miners=[farm.miners[("site-a", "client-x")]])
    issued_invoice(customer=farm.client_y, site=farm.site_b, miners=[farm.miners[("site-b", "client-y")]])
    root = proofs.close_day(yesterday())
    return inv_x, root


def test_client_downloads_a_proof_and_verifies_its_statement(page, live_server, closed, tmp_path):  # noqa: F811
    invoice, root = closed
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "client_x")
    page.goto(f"{live_server.url}/proofs/documents/")
    assert page.locator("[data-testid=proof-document-row]").count() == 1  # its own statement only
    with page.expect_download() as download_info:
        page.click("[data-testid=proof-download]")
    proof_path = tmp_path / "proof.json"
    download_info.value.save_as(proof_path)
    assert json.loads(proof_path.read_text())["root"] == root.root_sha256

    statement = tmp_path / "statement.csv"
    statement.write_bytes(statement_bytes(invoice))
    page.goto(f"{live_server.url}/proofs/verify/")
    page.set_input_files("#id_file", str(statement))
    page.set_input_files("#id_proof", str(proof_path))
    page.click("[data-testid=verify-submit]")
    result = page.locator("[data-testid=verify-result]")
    assert result.get_attribute("data-ok") == "1"
    assert page.locator("[data-testid=verify-check][data-ok='1']").count() == 6
    page.screenshot(path=str(SHOTS / "verify-ok-1280.png"), full_page=True)

    changed = bytearray(statement.read_bytes())
    changed[40] ^= 0x01
    statement.write_bytes(bytes(changed))
    page.set_input_files("#id_file", str(statement))
    page.set_input_files("#id_proof", str(proof_path))
    page.click("[data-testid=verify-submit]")
    assert result.get_attribute("data-ok") == "0"
    assert result.get_attribute("data-reason") == "document_mismatch"
    assert page.locator("[data-testid=verify-check][data-name=document]").get_attribute("data-ok") == "0"
    page.screenshot(path=str(SHOTS / "verify-failed-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 900})  # the long hashes of the result wrap on a phone
    assert no_sideways_scroll(page), "the verification result scrolls sideways at 390 px"
    page.screenshot(path=str(SHOTS / "verify-failed-390.png"), full_page=True)
    assert page.evaluate("window.__csp") == []


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_and_obey_the_policy(page, live_server, closed, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    login(page, live_server, "client_x")
    for name, url in (("roots", "/proofs/"), ("documents", "/proofs/documents/"), ("verify", "/proofs/verify/")):
        assert page.goto(f"{live_server.url}{url}").status == 200, url
        page.wait_for_load_state("networkidle")
        if name == "roots":
            page.click("[data-testid=copy-op-return]")
            expect(page.locator("[data-testid=copy-op-return]")).to_have_attribute("data-copied", re.compile("yes|no"))
        assert page.evaluate("window.__csp") == [], url
        assert no_sideways_scroll(page), f"{url} scrolls sideways at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
