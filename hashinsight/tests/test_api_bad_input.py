"""Bad input from outside gets a 4xx in the standard error shape and writes nothing; never a 500.

The NUL-byte cases matter most on PostgreSQL (which refuses NUL in text); run this file with
``DATABASE_URL`` pointing at PostgreSQL to exercise them there."""

import json
from decimal import Decimal

import pytest

from miners.models import Miner, MinerModel
from sites.models import Site

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"error_code", "message", "request_id", "details"}


@pytest.fixture
def owner_api(api, farm):
    api.force_authenticate(farm.users["owner"])
    return api


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == ERROR_KEYS
    return body


# --- bulk import ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "application/octet-stream", ""])
def test_bulk_import_with_an_empty_body_is_a_400(owner_api, content_type):
    before = Miner.objects.count()
    response = owner_api.generic("POST", "/api/v1/miners/bulk", b"", content_type=content_type)
    assert error(response, 400)["error_code"] == "empty_file"
    assert Miner.objects.count() == before


def test_bulk_import_with_no_body_at_all_is_a_400(owner_api):
    response = owner_api.post("/api/v1/miners/bulk")
    assert error(response, 400)["error_code"] == "empty_file"


def test_bulk_import_refuses_a_nul_byte_in_a_cell(owner_api):
    before = Miner.objects.count()
    body = "serial,model,site,zone\nNUL\x00001,antminer-s21-200t,site-a,A1\nOK0002,antminer-s21-200t,site-a,A1\n"
    response = owner_api.generic("POST", "/api/v1/miners/bulk", body.encode(), content_type="text/csv")
    errors = error(response, 400)["details"]["errors"]
    assert [(e["line"], e["field"], e["code"]) for e in errors] == [(2, "serial", "nul_character")]
    assert Miner.objects.count() == before


def test_bulk_import_json_refuses_a_nul_byte(owner_api):
    before = Miner.objects.count()
    rows = [{"serial": "J1", "model": "antminer-s21-200t", "site": "site-a", "zone": "A1", "rack": "R\x001"}]
    response = owner_api.post("/api/v1/miners/bulk", rows, format="json")
    assert error(response, 400)["error_code"] == "nul_character"
    assert Miner.objects.count() == before


# --- NUL bytes anywhere in an API write -------------------------------------------------------------


def test_nul_byte_in_a_json_string_is_a_400_and_writes_nothing(owner_api):
    before = Site.objects.count()
    body = {"name": "North", "slug": "north", "timezone": "UTC", "capacity_kw": "10", "location": "a\x00b"}
    response = owner_api.post("/api/v1/sites", body, format="json")
    assert error(response, 400)["error_code"] == "nul_character"
    assert Site.objects.count() == before


def test_nul_byte_in_a_json_key_is_a_400(owner_api):
    response = owner_api.generic(
        "POST", "/api/v1/sites", json.dumps({"na\x00me": "x"}), content_type="application/json"
    )
    assert error(response, 400)["error_code"] == "nul_character"


def test_nul_byte_in_a_form_field_is_a_400(owner_api):
    before = Site.objects.count()
    response = owner_api.post(
        "/api/v1/sites", {"name": "N\x00", "slug": "n", "timezone": "UTC", "capacity_kw": "10"}, format="multipart"
    )
    error(response, 400)
    assert Site.objects.count() == before


@pytest.mark.parametrize(
    "query",
    [{"search": "a\x00b"}, {"rack": "R\x00"}, {"firmware": "x\x00"}, {"ordering": "serial\x00"}, {"site": "1\x00"}],
)
def test_nul_byte_in_a_query_string_is_never_a_500(owner_api, query):
    response = owner_api.get("/api/v1/miners", query)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        error(response, 400)


# --- the miner-model catalog -------------------------------------------------------------------------


def model_body(**overrides):
    return {"vendor": "Acme", "name": "X1", "code": "acme-x1", "hashrate_ths": "100", "power_w": "3000", **overrides}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hashrate_ths": "0"}, "hashrate_ths"),
        ({"hashrate_ths": "-5"}, "hashrate_ths"),
        ({"power_w": "0"}, "power_w"),
        ({"power_w": "-1"}, "power_w"),
        ({"power_w": "222740533", "hashrate_ths": "7"}, "power_w"),  # the outside test's model
        ({"hashrate_ths": "0.01", "power_w": "20000"}, "power_w"),  # within each bound, not together
        ({"hashrate_ths": "5000"}, "hashrate_ths"),
    ],
)
def test_miner_model_out_of_bounds_is_a_400_naming_the_field(owner_api, overrides, field):
    before = MinerModel.objects.count()
    response = owner_api.post("/api/v1/miner-models", model_body(**overrides), format="json")
    body = error(response, 400)
    assert body["error_code"] == "validation_error"
    assert field in body["details"]
    assert MinerModel.objects.count() == before


def test_miner_model_update_out_of_bounds_is_a_400_and_changes_nothing(owner_api):
    model = MinerModel.objects.create(**model_body(hashrate_ths=Decimal("100"), power_w=Decimal("3000")))
    response = owner_api.patch(f"/api/v1/miner-models/{model.pk}", {"power_w": "222740533"}, format="json")
    assert "power_w" in error(response, 400)["details"]
    model.refresh_from_db()
    assert model.power_w == Decimal("3000")
    assert owner_api.get("/api/v1/miner-models", {"limit": 100}).status_code == 200


def test_miner_model_at_the_bounds_is_accepted_and_readable(owner_api):
    response = owner_api.post("/api/v1/miner-models", model_body(hashrate_ths="2000", power_w="20000"), format="json")
    assert response.status_code == 201, response.content
    saved = MinerModel.objects.get(code="acme-x1")
    assert (saved.hashrate_ths, saved.power_w) == (Decimal("2000"), Decimal("20000"))
    assert response.json()["efficiency_j_per_th"] == "10.00"


def test_the_database_enforces_the_same_bounds(db):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        MinerModel.objects.create(**model_body(power_w=Decimal("222740533"), hashrate_ths=Decimal("7")))


# --- oversized and pathological bodies --------------------------------------------------------------


def test_a_body_over_the_upload_limit_is_a_413(owner_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    before = Site.objects.count()
    payload = json.dumps({"name": "x", "location": "y" * (2 * 1024 * 1024)})
    response = owner_api.generic("POST", "/api/v1/sites", payload, content_type="application/json")
    assert error(response, 413)["error_code"] == "request_too_large"
    assert Site.objects.count() == before


def test_a_25_mb_json_body_is_a_413(owner_api):
    payload = json.dumps({"name": "x", "location": "y" * (25 * 1024 * 1024)})
    response = owner_api.generic("POST", "/api/v1/sites", payload, content_type="application/json")
    assert error(response, 413)["error_code"] == "request_too_large"


def test_deeply_nested_json_is_a_400(owner_api):
    payload = "[" * 100_000 + "]" * 100_000
    response = owner_api.generic("POST", "/api/v1/sites", payload, content_type="application/json")
    assert error(response, 400)["error_code"] == "malformed_request"
    response = owner_api.generic("POST", "/api/v1/miners/bulk", payload, content_type="application/json")
    assert error(response, 400)["error_code"] == "malformed_request"


# --- found by the schema fuzz test ---------------------------------------------------------------------


def test_a_user_without_a_role_is_a_400_naming_it(owner_api):
    from hashinsight.accounts.models import User

    before = User.objects.count()
    body = {"username": "newbie", "email": "n@example.test", "password": "a-long-enough-pass-1"}
    response = owner_api.post("/api/v1/users/", body, format="json")
    assert "role" in error(response, 400)["details"]
    assert User.objects.count() == before


def test_a_csv_body_over_the_upload_limit_is_a_413_without_reading_it_all(owner_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    before = Miner.objects.count()
    body = ("serial,model,site,zone\n" + "X,antminer-s21-200t,site-a,A1\n" * 200).encode()
    response = owner_api.generic("POST", "/api/v1/miners/bulk", body, content_type="text/csv")
    assert error(response, 413)["error_code"] == "request_too_large"
    assert Miner.objects.count() == before


def test_a_body_too_big_for_django_itself_is_a_413_in_the_error_shape(rf):
    # Django answers a SuspiciousOperation raised outside DRF (a middleware reading the body) via handler400.
    from django.core.exceptions import RequestDataTooBig

    from hashinsight.core.api.errors import handler400

    response = handler400(rf.post("/api/v1/sites"), RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert set(json.loads(response.content)) == ERROR_KEYS
    assert handler400(rf.post("/api/v1/sites"), None).status_code == 400


def test_too_many_form_fields_is_a_400_not_a_500(owner_api):
    body = "&".join(f"f{i}=x" for i in range(1500))
    response = owner_api.generic("POST", "/api/v1/sites", body, content_type="application/x-www-form-urlencoded")
    assert error(response, 400)["error_code"] == "malformed_request"


def test_a_token_with_a_nul_byte_is_refused_like_any_unknown_token(api, farm):
    response = api.get("/api/v1/sites", HTTP_AUTHORIZATION="Bearer hi_ab\x00cd_secret")
    assert error(response, 401)["error_code"] == "authentication_failed"
