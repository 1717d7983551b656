"""Bulk import: all rows or none, per-line errors, and the limits a spreadsheet upload needs."""

from __future__ import annotations

import json

import pytest

from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import MinerFactory
from miners.models import Miner

pytestmark = pytest.mark.django_db

HEADER = "serial,model,site,zone,customer,rack,shelf,slot,status,ip,mac,username,password\n"


def csv_rows(n, *, start=0, site="site-a", zone="A1"):
    return "".join(
        f"BULK{i:06d},antminer-s21-200t,{site},{zone},client-x,R1,{i // 100},{i % 100},active,"
        f"10.0.{i // 250}.{i % 250},02:00:00:00:{i // 256 % 256:02X}:{i % 256:02X},root,pw{i}\n"
        for i in range(start, start + n)
    )


@pytest.fixture
def owner_api(api, farm):
    api.force_authenticate(farm.users["owner"])
    return api


def post_csv(api, body: str | bytes, url="/api/v1/miners/bulk"):
    data = body.encode() if isinstance(body, str) else body
    return api.generic("POST", url, data, content_type="text/csv")


def counts():
    return Miner.objects.count(), OutboxEvent.objects.count()


def assert_nothing_written(before):
    """``before`` is ``counts()`` taken before the request: no miner and no event was written."""
    assert counts() == before


def test_valid_csv_creates_every_row(owner_api, farm):
    before = Miner.objects.count()
    events_before = OutboxEvent.objects.filter(event_type="miners.bulk_imported").count()
    response = post_csv(owner_api, HEADER + csv_rows(25))
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 25
    assert Miner.objects.count() == before + 25
    miner = Miner.objects.get(serial="BULK000007")
    assert miner.customer == farm.client_x
    assert miner.get_identity() == {"ip": "10.0.0.7", "mac": "02:00:00:00:00:07", "username": "root", "password": "pw7"}
    assert (miner.site, miner.zone, miner.rack, miner.shelf, miner.slot) == (farm.site_a, farm.zone_a, "R1", 0, 7)
    assert OutboxEvent.objects.filter(event_type="miners.bulk_imported").count() == events_before + 1


def test_seed_alias_reaches_the_same_handler(owner_api):
    response = post_csv(owner_api, HEADER + csv_rows(2), url="/api/miners/bulk")
    assert response.status_code == 201
    assert response.json()["created"] == 2


def test_json_body_is_accepted(owner_api):
    rows = [
        {"serial": "J1", "model": "Antminer S21", "site": "site-a", "zone": "A1", "shelf": 1, "slot": 2, "rack": "R9"}
    ]
    response = owner_api.post("/api/v1/miners/bulk", {"miners": rows}, format="json")
    assert response.status_code == 201, response.json()
    assert Miner.objects.get(serial="J1").slot == 2


def test_missing_column_is_refused(owner_api):
    before = counts()
    response = post_csv(owner_api, "serial,model,site\nX1,antminer-s21-200t,site-a\n")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "missing_columns"
    assert body["details"]["missing"] == ["zone"]
    assert_nothing_written(before)


def test_unknown_model_fails_the_whole_file_with_line_numbers(owner_api):
    before = counts()
    body = HEADER + csv_rows(3) + "BAD1,antminer-s99-1t,site-a,A1,,,,,,,,,\n"
    response = post_csv(owner_api, body)
    assert response.status_code == 400
    errors = response.json()["details"]["errors"]
    assert errors == [
        {
            "line": 5,
            "field": "model",
            "code": "unknown_model",
            "message": "No miner model 'antminer-s99-1t' in the catalog.",
        }
    ]
    assert_nothing_written(before)


def test_duplicate_serial_inside_the_file(owner_api):
    before = counts()
    response = post_csv(owner_api, HEADER + csv_rows(2) + csv_rows(1, start=0).replace(",R1,0,0,", ",R2,0,0,"))
    assert response.status_code == 400
    error = response.json()["details"]["errors"][0]
    assert (error["line"], error["field"], error["code"]) == (4, "serial", "duplicate_in_file")
    assert_nothing_written(before)


def test_duplicate_serial_against_the_database(owner_api, farm):
    existing = MinerFactory(zone=farm.zone_a, site=farm.site_a, serial="BULK000001")
    before = counts()
    response = post_csv(owner_api, HEADER + csv_rows(3))
    assert response.status_code == 400
    errors = response.json()["details"]["errors"]
    assert [(e["line"], e["code"]) for e in errors] == [(3, "duplicate_serial")]
    assert_nothing_written(before)
    assert existing.pk


def test_more_than_10000_rows_is_refused_before_validation(owner_api):
    before = counts()
    response = post_csv(owner_api, HEADER + csv_rows(10_001))
    assert response.status_code == 413
    assert response.json()["error_code"] == "too_many_rows"
    assert response.json()["details"] == {"max_rows": 10_000, "rows": 10_001}
    assert_nothing_written(before)


def test_too_many_json_rows(owner_api):
    before = counts()
    rows = [{"serial": f"S{i}"} for i in range(10_001)]
    response = owner_api.post("/api/v1/miners/bulk", json.dumps(rows), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error_code"] == "too_many_rows"
    assert_nothing_written(before)


def test_non_utf8_bytes_are_refused(owner_api):
    before = counts()
    body = (HEADER + "X1,antminer-s21-200t,site-a,A1,,,,,,,,,caf").encode() + b"\xe9\n"
    response = post_csv(owner_api, body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_encoding"
    assert_nothing_written(before)


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd"])
def test_spreadsheet_formula_cells_are_refused(owner_api, cell):
    before = counts()
    row = f'X1,antminer-s21-200t,site-a,A1,,,,,,,,"{cell.replace(chr(34), chr(34) * 2)}",\n'
    response = post_csv(owner_api, HEADER + row)
    assert response.status_code == 400
    errors = response.json()["details"]["errors"]
    assert any(e["code"] == "formula_cell" and e["field"] == "username" for e in errors)
    assert_nothing_written(before)


def test_rows_for_a_hidden_site_are_unknown_not_forbidden(api, farm):
    api.force_authenticate(farm.users["siteowner_a"])
    before = counts()
    response = post_csv(api, HEADER + csv_rows(1, site="site-b", zone="B1"))
    assert response.status_code == 400
    assert response.json()["details"]["errors"][0]["code"] == "unknown_site"
    assert_nothing_written(before)


def test_read_only_site_rows_are_refused(api, farm):
    api.force_authenticate(farm.users["siteowner_b_ro"])
    before = counts()
    response = post_csv(api, HEADER + csv_rows(1, site="site-b", zone="B1"))
    assert response.status_code == 400
    assert response.json()["details"]["errors"][0]["code"] == "site_read_only"
    assert_nothing_written(before)


def test_clients_cannot_bulk_import(api, farm):
    api.force_authenticate(farm.users["client_x"])
    before = counts()
    response = post_csv(api, HEADER + csv_rows(1))
    assert (response.status_code, response.json()["error_code"]) == (403, "permission_denied")
    assert_nothing_written(before)


def test_invalid_cells_are_reported_per_field(owner_api):
    before = counts()
    row = "X1,antminer-s21-200t,site-a,NoZone,nobody,R1,a,1,broken,999.1.1.1,zz,,\n"
    response = post_csv(owner_api, HEADER + row)
    assert response.status_code == 400
    assert_nothing_written(before)
    codes = {(e["field"], e["code"]) for e in response.json()["details"]["errors"]}
    assert codes == {
        ("zone", "unknown_zone"), ("customer", "unknown_customer"), ("shelf", "invalid_integer"),
        ("status", "invalid_choice"), ("ip", "invalid_ip"), ("mac", "invalid_mac"),
    }  # fmt: skip
