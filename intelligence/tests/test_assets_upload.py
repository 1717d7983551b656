"""Training from an uploaded CSV (``POST /api/v1/training-jobs`` multipart): a bad row is a 400 naming the row and
why with nothing stored; a good file gives an UploadedSeries and a TRAINING model (subject ``upload:<id>``), the
training queued after the commit (202 at once), its backtest next to naive, status and progress in the list; only
the owner, owners and admins see an upload and its models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashinsight.events.models import AuditEvent, JobRun
from intelligence import uploaded_series
from intelligence.models import ForecastModel, UploadedSeries

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, tzinfo=UTC)
URL = "/api/v1/training-jobs"


def csv_text(n=120, step_min=60, *, bad_row=None, bad="x"):
    rng = np.random.default_rng(0)
    lines = ["ts,value"]
    for k in range(n):
        ts = (T0 + timedelta(minutes=step_min * k)).isoformat().replace("+00:00", "Z")
        value = f"{100 + 10 * np.sin(2 * np.pi * k / 24) + rng.normal(0, 1):.3f}"
        if bad_row == k + 1:
            value = bad
        lines.append(f"{ts},{value}")
    return "\n".join(lines) + "\n"


def upload(api, user, text, **fields):
    api.force_authenticate(user)
    body = {"file": SimpleUploadedFile("series.csv", text.encode(), content_type="text/csv"), "name": "site power",
            "unit": "kW", "algorithm": "naive", "horizon": 6, **fields}  # fmt: skip
    return api.post(URL, body, format="multipart")


def test_an_upload_is_stored_registered_and_trained_after_commit(api, farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = upload(api, farm.users["siteowner_a"], csv_text())
    assert r.status_code == 202, r.json()
    body = r.json()
    series = UploadedSeries.objects.get(pk=body["upload"]["id"])
    assert series.rows == 120 and series.interval_minutes == 60 and series.owner == farm.users["siteowner_a"]
    assert series.points[0] == ["2026-01-01T00:00:00Z", pytest.approx(100, abs=5)]
    model = ForecastModel.objects.get(pk=body["model"]["id"])
    assert model.subject == f"upload:{series.pk}" and model.status == "training" and model.version == 1
    assert body["task_id"].startswith(f"train-upload-{model.pk}-")
    assert AuditEvent.objects.filter(event_type="uploaded_series.created").count() == 1
    assert len(callbacks) == 1  # queued only once the transaction commits: nothing ran yet
    listed = api.get(URL).json()["results"]
    assert listed[0]["status"] == "training" and listed[0]["progress"] == 0.0 and listed[0]["job"] is None
    callbacks[0]()  # the commit: the (eager) job trains it
    model.refresh_from_db()
    assert model.status == "candidate", model.error
    assert model.backtest["unit"] == "steps" and model.backtest["origins"] == uploaded_series.BACKTEST_ORIGINS
    six = model.backtest["horizons"]["6"]
    assert six["n"] == uploaded_series.BACKTEST_ORIGINS and six["naive"]["n"] == uploaded_series.BACKTEST_ORIGINS
    assert set(model.backtest["horizons"]) == {"1", "3", "6"}
    run = JobRun.objects.get(task_id=body["task_id"])
    assert run.status == "success" and run.processed == uploaded_series.BACKTEST_ORIGINS
    job = api.get(URL).json()["results"][0]
    assert job["status"] == "candidate" and job["progress"] == 1.0 and job["job"]["status"] == "success"
    assert job["upload"]["rows"] == 120


def test_xgboost_trains_on_a_five_minute_series(api, farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = upload(api, farm.users["owner"], csv_text(n=400, step_min=5), algorithm="xgboost", horizon=12)
    assert r.status_code == 202, r.json()
    model = ForecastModel.objects.get(pk=r.json()["model"]["id"])
    assert model.status == "candidate", model.error
    twelve = model.backtest["horizons"]["12"]
    assert twelve["mape"] is not None and twelve["naive"]["mape"] is not None
    assert model.backtest["interval_minutes"] == 5


def test_a_redelivered_training_changes_nothing(api, farm, django_capture_on_commit_callbacks):
    from intelligence.forecast_tasks import train_upload

    with django_capture_on_commit_callbacks(execute=True):
        r = upload(api, farm.users["owner"], csv_text())
    model = ForecastModel.objects.get(pk=r.json()["model"]["id"])
    before = (model.status, model.backtest, model.trained_at)
    train_upload.apply(kwargs={"model_id": model.pk}).get()
    model.refresh_from_db()
    assert (model.status, model.backtest, model.trained_at) == before


@pytest.mark.parametrize(
    ("text", "fields", "code", "row"),
    [
        (csv_text(bad_row=7), {}, "invalid_value", 7),
        (csv_text(bad_row=9, bad="nan"), {}, "invalid_value", 9),
        (csv_text().replace("2026-01-01T05:00:00Z", "2026-01-01T05:30:00Z"), {}, "irregular_step", 6),
        (csv_text().replace("2026-01-01T03:00:00Z", "tomorrow"), {}, "invalid_ts", 4),
        (csv_text().replace("2026-01-01T03:00:00Z", "2026-01-01T03:00:00"), {}, "invalid_ts", 4),
        (csv_text().replace("ts,value", "time,value"), {}, "missing_columns", None),
        (csv_text(), {"interval_minutes": 30}, "irregular_step", 2),
        (csv_text(n=20), {}, "too_few_rows", None),
        (csv_text(), {"horizon": 0}, None, None),
        (csv_text(), {"algorithm": "difficulty_epoch"}, None, None),
    ],
)
def test_a_bad_file_is_a_400_naming_the_row_and_changes_nothing(api, farm, text, fields, code, row):
    r = upload(api, farm.users["owner"], text, **fields)
    assert r.status_code == 400, r.json()
    if code:
        assert r.json()["error_code"] == code
        assert r.json()["details"].get("row") == row
        if row:
            assert f"row {row}" in r.json()["message"]
    assert not UploadedSeries.objects.exists() and not ForecastModel.objects.exists()
    assert not AuditEvent.objects.filter(event_type="uploaded_series.created").exists()


def test_a_file_that_is_not_utf8_is_refused(api, farm):
    api.force_authenticate(farm.users["owner"])
    body = {"file": SimpleUploadedFile("s.csv", b"ts,value\n\xff\xfe", content_type="text/csv"), "name": "x"}
    r = api.post(URL, body, format="multipart")
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_encoding"


def test_the_row_limit(api, farm, monkeypatch):
    from intelligence.algorithms import asset_forecast as af

    monkeypatch.setattr(af, "MAX_UPLOAD_ROWS", 100)
    r = upload(api, farm.users["owner"], csv_text(n=101))
    assert r.status_code == 400 and r.json()["error_code"] == "too_many_rows"


def test_only_the_owner_and_owners_or_admins_see_an_upload(api, farm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = upload(api, farm.users["siteowner_a"], csv_text())
    model_id = r.json()["model"]["id"]

    def listed(user):
        api.force_authenticate(farm.users[user])
        return [j["model"]["id"] for j in api.get(URL).json()["results"]]

    assert listed("siteowner_a") == [model_id]
    assert listed("siteowner_b_ro") == []
    assert model_id in listed("admin") and model_id in listed("owner")
    assert listed("client_x") == []
    assert uploaded_series.upload_list(user=farm.users["siteowner_b_ro"]).count() == 0
    assert uploaded_series.upload_list(user=farm.users["owner"]).count() == 1


def test_clients_cannot_upload_and_the_network_path_still_needs_a_global_role(api, farm):
    assert upload(api, farm.users["client_x"], csv_text()).status_code == 403
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.post(URL, {"target": "btc_price"}, format="json").status_code == 403


def test_the_training_jobs_list_as_csv_with_the_lists_permissions(api, farm, django_capture_on_commit_callbacks):
    """Issue 9 audit: ``?format=csv`` was ignored (JSON came back). The file holds the jobs the JSON list shows the
    caller, no more."""
    with django_capture_on_commit_callbacks(execute=True):
        model_id = upload(api, farm.users["siteowner_a"], csv_text()).json()["model"]["id"]

    def csv_rows(user, query=""):
        api.force_authenticate(farm.users[user])
        r = api.get(f"{URL}?format=csv{query}")
        assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
        assert r["Content-Disposition"].startswith('attachment; filename="training-jobs-')
        return [line.split(",") for line in b"".join(r.streaming_content).decode("utf-8-sig").splitlines()]

    header, *rows = csv_rows("siteowner_a")
    assert header[:7] == ["Model id", "Target", "Subject", "Algorithm", "Version", "Status", "Progress (%)"]
    assert len(rows) == 1 and rows[0][:7] == [str(model_id), "Uploaded series", rows[0][2], "Naive", "1",
                                              "Candidate", "100.0"]  # fmt: skip
    assert rows[0][2].startswith("upload:") and rows[0][header.index("Job status")] == "success"
    assert csv_rows("siteowner_b_ro") == [header]  # another site owner's upload is not theirs to follow
    assert csv_rows("client_x") == [header]
    assert [r[0] for r in csv_rows("owner")[1:]] == [str(model_id)]
    assert csv_rows("siteowner_a", "&status=training") == [header]
    api.force_authenticate(farm.users["siteowner_a"])
    bad = api.get(f"{URL}?format=csv&status=nope")
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_filter"  # errors stay JSON
