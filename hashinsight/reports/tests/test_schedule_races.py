"""Two schedule runners at the same moment, on PostgreSQL: each sees the schedule due, but the row lock (taken with
``skip_locked``) and ``last_month_sent`` written in the same transaction as the job leave exactly one job and one
e-mail per recipient. The patched job creation waits for the other runner right after it starts, so without the lock
both would create their job."""

from __future__ import annotations

import contextlib
import threading
from datetime import date

import pytest
from django.core import mail
from django.db import connection

from hashinsight.reports import services
from hashinsight.reports.models import ReportJob, ReportSchedule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    from django.utils.functional import empty

    from hashinsight.core.storage import private_storage

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    private_storage._wrapped = empty
    yield
    private_storage._wrapped = empty


def test_two_runners_send_once(farm, on_postgres, monkeypatch):
    services.schedule_create(user=farm.users["owner"], kind="site_monthly", site=farm.site_a.pk, formats=["xlsx"],
                             recipients=["ops@example.test"], day_of_month=2)  # fmt: skip
    barrier = threading.Barrier(2, timeout=2)
    real_create = services._job_create

    def create_then_wait(**kw):
        job = real_create(**kw)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # both here at once only if nothing serialises them
        return job

    monkeypatch.setattr(services, "_job_create", create_then_wait)
    results: list[dict] = []

    def run():
        try:
            results.append(services.schedules_run(today=date(2026, 10, 2)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r["queued"] for r in results) == [0, 1]
    assert ReportJob.objects.count() == 1 and ReportJob.objects.get().status == "done"
    assert ReportSchedule.objects.get().last_month_sent == date(2026, 9, 1)
    assert [m.to for m in mail.outbox] == [["ops@example.test"]]
