"""The forecast API: the seed's GET /api/forecast/<user_id> (own vs others', cache), the latest forecasts, the
registry (list, filters, CSV, activate / roll back permissions) and training jobs."""

from __future__ import annotations

from unittest import mock

import pytest

from hashinsight.events.models import AuditEvent
from intelligence.models import Forecast, ForecastModel
from intelligence.tests.forecastreg_support import market_days, registry_model

pytestmark = pytest.mark.django_db
Status = ForecastModel.Status


@pytest.fixture
def market():
    return market_days()


def as_user(api, user):
    api.force_authenticate(user)
    return api


# --- GET /api/forecast/<user_id> -----------------------------------------------------------------------------------


def test_a_user_reads_their_own_forecast_with_intervals_and_metrics(api, farm, market):
    customer = farm.users["customer"]
    registry_model(status=Status.ACTIVE, data_until=market, mape=9.0, naive_mape=5.0)  # loses: naive serves
    r = as_user(api, customer).get(f"/api/forecast/{customer.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) >= {"price", "difficulty", "hashprice", "revenue", "user_id", "generated_at"}
    assert r["X-Cache"] == "miss"
    for key in ("price", "difficulty", "revenue"):
        points = body[key]["points"]
        assert len(points) == 30
        assert all(p["lo95"] <= p["lo80"] <= p["yhat"] <= p["hi80"] <= p["hi95"] for p in points)
    assert body["hashprice"]["algorithm"] == "naive"
    assert "does not beat naive" in body["hashprice"]["fallback_reason"]
    assert body["hashprice"]["metrics"]["horizons"]["7"]["naive"]["mape"] == 5.0
    assert body["revenue"]["fleet"]["hashrate_ths"] == "2000.00"  # the factory's 10 × 200 TH/s
    # the second read comes from the cache
    again = api.get(f"/api/forecast/{customer.pk}")
    assert again["X-Cache"] == "hit" and again.json()["generated_at"] == body["generated_at"]


@pytest.mark.parametrize("reader", ["customer2", "client_x", "siteowner_a"])
def test_another_users_forecast_is_not_found(api, farm, market, reader):
    customer = farm.users["customer"]
    r = as_user(api, farm.users[reader]).get(f"/api/forecast/{customer.pk}")
    assert r.status_code == 404


@pytest.mark.parametrize("reader", ["owner", "admin"])
def test_owners_and_admins_read_any_users_forecast(api, farm, market, reader):
    customer = farm.users["customer"]
    r = as_user(api, farm.users[reader]).get(f"/api/forecast/{customer.pk}")
    assert r.status_code == 200 and r.json()["user_id"] == customer.pk
    assert as_user(api, farm.users[reader]).get("/api/forecast/999999").status_code == 404


def test_guests_and_anonymous_are_refused(api, farm, market):
    guest = farm.users["guest"]
    assert api.get(f"/api/forecast/{guest.pk}").status_code in (401, 403)
    assert as_user(api, guest).get(f"/api/forecast/{guest.pk}").status_code == 403  # no AI module


def test_the_forecast_as_csv(api, farm, market):
    customer = farm.users["customer"]
    r = as_user(api, customer).get(f"/api/forecast/{customer.pk}?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    lines = b"".join(r.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Target,Unit,Date,Forecast,80 % low")
    assert len(lines) == 1 + 4 * 30


# --- /api/v1/forecasts ---------------------------------------------------------------------------------------------


def test_latest_forecasts_are_scoped_to_the_network_and_ones_own(api, farm, market):
    owner, customer, other = farm.users["owner"], farm.users["customer"], farm.users["customer2"]
    as_user(api, customer).get(f"/api/forecast/{customer.pk}")
    as_user(api, other).get(f"/api/forecast/{other.pk}")
    mine = as_user(api, customer).get("/api/v1/forecasts").json()["results"]
    subjects = sorted({f["subject"] for f in mine})
    assert subjects == ["", f"user:{customer.pk}"]
    assert len(mine) == 4  # the latest per (target, subject): 3 network + my revenue
    everyone = as_user(api, owner).get("/api/v1/forecasts?target=revenue").json()["results"]
    assert sorted(f["subject"] for f in everyone) == sorted([f"user:{customer.pk}", f"user:{other.pk}"])
    hidden = Forecast.objects.get(subject=f"user:{other.pk}")
    assert as_user(api, customer).get(f"/api/v1/forecasts/{hidden.pk}").status_code == 404
    assert as_user(api, customer).get("/api/v1/forecasts?target=nope").status_code == 400
    csv = as_user(api, customer).get("/api/v1/forecasts?format=csv&subject=network")
    assert b"".join(csv.streaming_content).decode("utf-8-sig").count("\n") == 1 + 3


# --- the registry --------------------------------------------------------------------------------------------------


def test_registry_list_filters_sorts_and_exports(api, farm, market):
    registry_model(target="hashprice", algorithm="xgboost")
    registry_model(target="btc_price", algorithm="prophet", status=Status.FAILED)
    registry_model(target="revenue", algorithm="naive", subject="user:1")  # a per-subject row
    owner, customer = farm.users["owner"], farm.users["customer"]
    rows = as_user(api, owner).get("/api/v1/forecast-models?ordering=target").json()["results"]
    assert [r["target"] for r in rows] == ["btc_price", "hashprice", "revenue"]
    assert rows[1]["backtest"]["horizons"]["7"]["naive"]["mape"] == 5.0
    assert len(as_user(api, owner).get("/api/v1/forecast-models?status=failed").json()["results"]) == 1
    # a customer sees the network's models only
    assert {r["subject"] for r in as_user(api, customer).get("/api/v1/forecast-models").json()["results"]} == {""}
    csv = as_user(api, owner).get("/api/v1/forecast-models?format=csv&target=hashprice")
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert "7-day MAPE (%)" in text.splitlines()[0] and ",3.0,5.0," in text


def test_who_activated_a_model_is_shown_to_operators_only(api, farm, market):
    model = registry_model(data_until=market)
    owner = farm.users["owner"]
    assert as_user(api, owner).post(f"/api/v1/forecast-models/{model.pk}/activate", {"reason": "x"}).status_code == 200
    for role, expected in (("owner", owner.username), ("admin", owner.username), ("customer", None)):
        user = farm.users[role]
        listed = {r["id"]: r for r in as_user(api, user).get("/api/v1/forecast-models").json()["results"]}
        assert listed[model.pk]["activated_by"] == expected, role
        assert as_user(api, user).get(f"/api/v1/forecast-models/{model.pk}").json()["activated_by"] == expected


@pytest.mark.parametrize("role_user,code", [("owner", 200), ("admin", 200), ("siteowner_a", 403), ("customer", 403)])
def test_activate_needs_an_owner_or_admin(api, farm, market, role_user, code):
    model = registry_model(data_until=market)
    r = as_user(api, farm.users[role_user]).post(f"/api/v1/forecast-models/{model.pk}/activate", {"reason": "x"})
    assert r.status_code == code, r.content
    model.refresh_from_db()
    assert (model.status == Status.ACTIVE) == (code == 200)
    assert AuditEvent.objects.filter(event_type="forecast_model.activated").count() == (1 if code == 200 else 0)


def test_activate_and_roll_back_through_the_api(api, farm, market):
    owner = farm.users["owner"]
    v1, v2 = registry_model(data_until=market), registry_model(data_until=market)
    as_user(api, owner)
    assert api.post(f"/api/v1/forecast-models/{v1.pk}/activate").json()["status"] == "active"
    assert api.post(f"/api/v1/forecast-models/{v2.pk}/activate").json()["status"] == "active"
    body = api.post(f"/api/v1/forecast-models/{v2.pk}/rollback", {"reason": "drifted"}).json()
    assert body["rolled_back"]["status"] == "retired" and body["active"]["id"] == v1.pk
    r = api.post(f"/api/v1/forecast-models/{v2.pk}/rollback")
    assert r.status_code == 409 and r.json()["error_code"] == "model_not_active"
    failed = registry_model(status=Status.FAILED)
    r = api.post(f"/api/v1/forecast-models/{failed.pk}/activate")
    assert r.status_code == 409 and r.json()["error_code"] == "model_not_ready"
    hidden = registry_model(target="revenue", algorithm="naive", subject="user:5")
    r = as_user(api, farm.users["customer"]).post(f"/api/v1/forecast-models/{hidden.pk}/activate")
    assert r.status_code == 404


# --- training jobs -------------------------------------------------------------------------------------------------


def test_a_training_job_is_queued_and_answered_at_once(api, farm, market, django_capture_on_commit_callbacks):
    from intelligence import forecast_tasks

    owner = farm.users["owner"]
    with (
        mock.patch.object(forecast_tasks.train_models, "apply_async") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        r = as_user(api, owner).post("/api/v1/training-jobs", {"target": "difficulty"}, format="json")
    assert r.status_code == 202, r.content
    body = r.json()
    assert body["model"]["status"] == "training" and body["model"]["algorithm"] == "difficulty_epoch"
    queued.assert_called_once()
    assert queued.call_args.kwargs["kwargs"]["model_ids"] == [body["model"]["id"]]
    assert queued.call_args.kwargs["task_id"] == body["task_id"]
    assert ForecastModel.objects.get(pk=body["model"]["id"]).status == Status.TRAINING  # nothing ran yet


def test_training_job_runs_and_is_recorded(api, farm, market, django_capture_on_commit_callbacks):
    from hashinsight.events.models import JobRun

    owner = farm.users["owner"]
    with django_capture_on_commit_callbacks(execute=True):  # eager Celery: the job runs at commit
        r = as_user(api, owner).post("/api/v1/training-jobs", {"target": "btc_price", "algorithm": "naive"})
    model = ForecastModel.objects.get(pk=r.json()["model"]["id"])
    assert model.status == Status.CANDIDATE and model.backtest["horizons"]["7"]["n"] == 12  # the default origins
    run = JobRun.objects.get(job_type="intelligence.train_models")
    assert run.status == "success" and run.trigger == "manual" and run.task_id == r.json()["task_id"]
    assert run.result["models"][0]["id"] == model.pk


def test_training_requests_are_validated_and_restricted(api, farm, market):
    r = as_user(api, farm.users["owner"]).post("/api/v1/training-jobs", {"target": "weather"})
    assert r.status_code == 400 and "target" in str(r.json())
    r = as_user(api, farm.users["owner"]).post("/api/v1/training-jobs", {"target": "revenue"})
    assert r.status_code == 400 and r.json()["error_code"] == "unknown_target"  # derived from hashprice, not trained
    r = as_user(api, farm.users["owner"]).post(
        "/api/v1/training-jobs", {"target": "btc_price", "algorithm": "difficulty_epoch"}
    )
    assert r.status_code == 400 and r.json()["error_code"] == "unknown_algorithm"
    assert (
        as_user(api, farm.users["siteowner_a"]).post("/api/v1/training-jobs", {"target": "btc_price"}).status_code
        == 403
    )
    assert (
        as_user(api, farm.users["customer"]).post("/api/v1/training-jobs", {"target": "btc_price"}).status_code == 403
    )
    assert not ForecastModel.objects.exists()
