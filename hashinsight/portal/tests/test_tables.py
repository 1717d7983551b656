"""The list-page toolkit on the real pages: sorting, filters, pagination, URL state, messages for bad
values, and the CSV export (content, scope, formula safety, streaming)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from html import unescape

import pytest
from django.test import AsyncRequestFactory
from django.utils.http import urlencode

from hashinsight.events.models import JobRun
from hashinsight.portal import tables
from hashinsight.tests.factories import MinerFactory, ZoneFactory
from miners.models import Miner
from telemetry import services as alert_services

pytestmark = pytest.mark.django_db


def rows(response, testid):
    html = response.content.decode()
    return re.findall(rf'<tr data-testid="{testid}"[^>]*>(.*?)</tr>', html, re.S)


def first_cells(response, testid):
    return [unescape(re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)[0])).strip()
            for r in rows(response, testid)]  # fmt: skip


def problems(response):
    return [unescape(p) for p in re.findall(r'data-testid="table-problem">([^<]*)<', response.content.decode())]


def links(response, testid=None):
    html = response.content.decode()
    pattern = rf'href="([^"]*)"[^>]*data-testid="{testid}"' if testid else r'class="page-link" href="([^"]*)"'
    return [unescape(h) for h in re.findall(pattern, html)]


def read_csv(response):
    assert response.streaming, "the export must stream"
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def owner(client, farm):
    client.force_login(farm.users["owner"])
    return client


def test_sorting_by_a_column_both_ways_with_the_primary_key_breaking_ties(owner, farm):
    serials = sorted(m.serial for m in farm.miners.values())
    assert first_cells(owner.get("/miners/"), "miner-row") == serials
    assert first_cells(owner.get("/miners/?sort=-serial"), "miner-row") == serials[::-1]
    # Every miner has the same status: the order is then the primary key's, in the sort's direction.
    by_pk = [m.serial for m in sorted(farm.miners.values(), key=lambda m: m.pk)]
    assert first_cells(owner.get("/miners/?sort=status"), "miner-row") == by_pk
    assert first_cells(owner.get("/miners/?sort=-status"), "miner-row") == by_pk[::-1]


def test_sort_header_links_flip_the_active_column_and_keep_the_filters(owner, farm):
    response = owner.get(f"/miners/?site={farm.site_a.pk}&sort=serial&page=1")
    assert links(response, "sort-serial") == [f"?site={farm.site_a.pk}&sort=-serial"]
    assert links(response, "sort-status") == [f"?site={farm.site_a.pk}&sort=status"]
    assert 'aria-sort="ascending"' in response.content.decode()
    flipped = owner.get(f"/miners/?site={farm.site_a.pk}&sort=-serial")
    assert links(flipped, "sort-serial") == [f"?site={farm.site_a.pk}&sort=serial"]


def test_filters_apply_and_hidden_site_reads_like_a_missing_one(client, farm):
    client.force_login(farm.users["siteowner_a"])
    response = client.get("/miners/", {"site": farm.site_a.pk, "q": farm.miners[("site-a", "client-x")].serial})
    assert first_cells(response, "miner-row") == [farm.miners[("site-a", "client-x")].serial]
    hidden = client.get("/miners/", {"site": farm.site_b.pk})
    missing = client.get("/miners/", {"site": 987654})
    assert hidden.status_code == missing.status_code == 200
    assert [p.replace(str(farm.site_b.pk), "N") for p in problems(hidden)] == [
        p.replace("987654", "N") for p in problems(missing)
    ]
    assert problems(hidden)[0].startswith("Site: Select a valid choice.")
    # The bad filter is dropped, the page still shows what the user may see (site A only).
    assert len(rows(hidden, "miner-row")) == 3
    assert "is-invalid" in hidden.content.decode()


def test_bad_values_are_named_in_a_visible_message_and_the_page_still_renders(owner, farm):
    response = owner.get("/miners/?site=abc&page=999999&sort=nonsense&status=broken")
    assert response.status_code == 200
    messages = problems(response)
    assert any(m.startswith("Site: Select a valid choice. abc") for m in messages)
    assert any(m.startswith("Status: Select a valid choice. broken") for m in messages)
    assert "The table cannot be sorted by “nonsense”; it is sorted by Serial instead." in messages
    assert "There is no page 999999; showing the last page, 1." in messages
    assert len(rows(response, "miner-row")) == 6
    assert 'class="alert alert-warning' in response.content.decode()
    assert problems(owner.get("/miners/?page=abc")) == ["“abc” is not a page number; showing page 1."]
    assert problems(owner.get("/miners/?page=0")) == ["“0” is not a page number; showing page 1."]
    assert problems(owner.get("/miners/?format=xlsx")) == ["“xlsx” is not an export format; use CSV."]
    assert problems(owner.get("/miners/")) == []


@pytest.fixture
def many_miners(farm):
    zone = ZoneFactory(site=farm.site_a, name="Bulk")
    MinerFactory.create_batch(114, zone=zone, site=farm.site_a, status=Miner.Status.OFFLINE)
    return farm


def test_pagination_50_per_page_with_links_that_keep_filters_and_sort(owner, many_miners):
    first = owner.get("/miners/?status=offline&sort=-serial")
    assert len(rows(first, "miner-row")) == 50
    assert "1–50 of 114" in first.content.decode()
    page_links = links(first)
    assert "?status=offline&sort=-serial&page=2" in page_links
    assert "?status=offline&sort=-serial&page=3" in page_links
    last = owner.get("/miners/?status=offline&sort=-serial&page=3")
    assert len(rows(last, "miner-row")) == 14
    all_serials = sorted(Miner.objects.filter(status="offline").values_list("serial", flat=True), reverse=True)
    assert first_cells(last, "miner-row") == all_serials[100:]
    beyond = owner.get("/miners/?status=offline&page=999999")
    assert problems(beyond) == ["There is no page 999999; showing the last page, 3."]
    assert len(rows(beyond, "miner-row")) == 14
    # Sorting or filtering starts again at page 1; the export takes every page.
    assert links(last, "sort-serial") == ["?status=offline&sort=serial"]
    assert links(last, "export-csv") == ["?status=offline&sort=-serial&format=csv"]


def test_csv_exports_exactly_the_filtered_rows_in_order_with_units(owner, many_miners):
    response = owner.get("/miners/?status=offline&sort=-serial&page=2&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="miners-')
    table = read_csv(response)
    assert "Nominal hashrate (TH/s)" in table[0] and "Nominal power (W)" in table[0]
    expected = sorted(Miner.objects.filter(status="offline").values_list("serial", flat=True), reverse=True)
    assert [r[0] for r in table[1:]] == expected  # every page, not page 2
    status_column = table[0].index("Status")
    assert {r[status_column] for r in table[1:]} == {"Offline"}


def test_csv_is_scoped_like_the_page(client, farm):
    client.force_login(farm.users["client_x"])
    table = read_csv(client.get("/miners/?format=csv"))
    assert sorted(r[0] for r in table[1:]) == sorted(
        [farm.miners[("site-a", "client-x")].serial, farm.miners[("site-b", "client-x")].serial]
    )
    client.force_login(farm.users["siteowner_a"])
    hidden = client.get(f"/miners/?format=csv&site={farm.site_b.pk}")
    missing = client.get("/miners/?format=csv&site=987654")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.content.decode().replace(str(farm.site_b.pk), "N") == missing.content.decode().replace("987654", "N")
    assert farm.miners[("site-b", "own")].serial not in hidden.content.decode()


def test_csv_cells_cannot_run_as_formulas(owner, farm):
    miner = farm.miners[("site-a", "own")]
    Miner.objects.filter(pk=miner.pk).update(firmware='=HYPERLINK("http://x")', pool_worker="@SUM(1)")
    Miner.objects.filter(pk=farm.miners[("site-a", "client-x")].pk).update(firmware="+1", pool_worker="-2")
    table = read_csv(owner.get(f"/miners/?format=csv&site={farm.site_a.pk}"))
    header = table[0]
    by_serial = {r[0]: dict(zip(header, r, strict=True)) for r in table[1:]}
    assert by_serial[miner.serial]["Firmware"] == '\'=HYPERLINK("http://x")'
    assert by_serial[miner.serial]["Pool worker"] == "'@SUM(1)"
    other = by_serial[farm.miners[("site-a", "client-x")].serial]
    assert (other["Firmware"], other["Pool worker"]) == ("'+1", "'-2")
    assert tables.safe_cell(-5) == -5  # numbers stay numbers


def test_under_asgi_the_export_is_an_async_stream_not_a_list():
    request = AsyncRequestFactory().get("/miners/?format=csv")
    chunks = (chunk for chunk in [b"a,b\r\n", b"1,2\r\n"])
    stream = tables._for_server(request, chunks)
    assert hasattr(stream, "__aiter__")

    async def collect():
        return [chunk async for chunk in stream]

    assert asyncio.run(collect()) == [b"a,b\r\n", b"1,2\r\n"]


def test_site_list_sorts_by_visible_miner_count_and_exports(client, farm):
    MinerFactory.create_batch(2, zone=farm.zone_b, site=farm.site_b, customer=farm.client_x)
    client.force_login(farm.users["client_x"])
    response = client.get("/sites/?sort=-miners")
    assert first_cells(response, "site-row") == [farm.site_b.name, farm.site_a.name]
    table = read_csv(client.get("/sites/?sort=-miners&format=csv"))
    assert table[0] == ["Name", "Slug", "Location", "Time zone", "Capacity (kW)", "Miners"]
    assert [(r[0], r[5]) for r in table[1:]] == [(farm.site_b.name, "3"), (farm.site_a.name, "1")]
    assert first_cells(client.get(f"/sites/?{urlencode({'q': farm.site_a.name})}"), "site-row") == [farm.site_a.name]


def test_alert_list_defaults_to_unresolved_and_sorts_severity_by_meaning(owner, farm):
    miner = farm.miners[("site-a", "own")]
    info = alert_services.alert_raise(site=farm.site_a, alert_type="note", severity="info", message="i")
    crit = alert_services.alert_raise(site=farm.site_a, miner=miner, alert_type="fan", severity="critical", message="c")
    warn = alert_services.alert_raise(site=farm.site_b, alert_type="temp", severity="warning", message="w")
    gone = alert_services.alert_raise(site=farm.site_b, alert_type="old", severity="info", message="old")
    alert_services.alert_resolve(alert=gone)

    def ids(response):
        return [int(x) for x in re.findall(r'data-alert-id="(\d+)"', response.content.decode())]

    assert set(ids(owner.get("/alerts/"))) == {info.pk, crit.pk, warn.pk}
    assert set(ids(owner.get("/alerts/?status=any"))) == {info.pk, crit.pk, warn.pk, gone.pk}
    assert ids(owner.get("/alerts/?status=resolved")) == [gone.pk]
    assert ids(owner.get("/alerts/?sort=-severity")) == [crit.pk, warn.pk, info.pk]
    assert ids(owner.get("/alerts/?sort=severity")) == [info.pk, warn.pk, crit.pk]
    assert ids(owner.get(f"/alerts/?site={farm.site_b.pk}&alert_type=temp")) == [warn.pk]
    assert problems(owner.get("/alerts/?status=bogus"))[0].startswith("Status: Select a valid choice.")
    assert set(ids(owner.get("/alerts/?status=bogus"))) == {info.pk, crit.pk, warn.pk}  # the default applies


def test_alert_times_are_shown_in_the_site_time_zone_with_its_abbreviation(owner, farm):
    from datetime import UTC, datetime

    from telemetry.models import Alert

    farm.site_b.timezone = "Europe/Oslo"
    farm.site_b.save()
    a = alert_services.alert_raise(site=farm.site_a, alert_type="x", severity="info", message="a")
    b = alert_services.alert_raise(site=farm.site_b, alert_type="y", severity="info", message="b")
    Alert.objects.filter(pk__in=[a.pk, b.pk]).update(last_seen=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    html = owner.get("/alerts/").content.decode()
    assert ">2026-01-15 06:00 CST</time>" in html  # America/Chicago
    assert ">2026-01-15 13:00 CET</time>" in html  # Europe/Oslo
    table = read_csv(owner.get("/alerts/?format=csv"))
    assert table[0][0] == "Last seen (UTC)" and {r[0] for r in table[1:]} == {"2026-01-15T12:00:00Z"}


def test_jobs_page_needs_system_access_and_is_linked_for_those_who_have_it(client, farm):
    JobRun.objects.create(job_type="outbox.relay", status=JobRun.Status.SUCCESS, duration_ms=12, processed=3)
    JobRun.objects.create(job_type="cache.warm", status=JobRun.Status.FAILED, duration_ms=950, error="=boom")
    client.force_login(farm.users["siteowner_a"])  # SYSTEM READ
    response = client.get("/jobs/?sort=-duration")
    assert first_cells(response, "job-row")[0]  # rendered
    assert re.findall(r"<td>(cache.warm|outbox.relay)</td>", response.content.decode()) == [
        "cache.warm",
        "outbox.relay",
    ]
    assert 'href="/jobs/"' in response.content.decode()
    assert re.findall(r"<td>(cache.warm|outbox.relay)</td>", client.get("/jobs/?status=failed").content.decode()) == [
        "cache.warm"
    ]
    table = read_csv(client.get("/jobs/?format=csv&job_type=cache.warm"))
    assert [r[1] for r in table[1:]] == ["cache.warm"] and table[1][-1] == "'=boom"
    client.force_login(farm.users["client_x"])
    assert client.get("/jobs/").status_code == 403
    assert client.get("/jobs/?format=csv").status_code == 403
    assert 'href="/jobs/"' not in client.get("/miners/").content.decode()


# Who reaches the list pages and their exports, written out by hand (anonymous visitors go to login).
PAGE_STATUS = {
    #                 sites miners alerts jobs
    "owner":          (200, 200, 200, 200),
    "admin":          (200, 200, 200, 200),
    "siteowner_a":    (200, 200, 200, 200),
    "siteowner_b_ro": (200, 200, 200, 200),
    "client_x":       (200, 200, 200, 403),
    "customer":       (403, 403, 403, 403),
    "guest":          (403, 403, 403, 403),
}  # fmt: skip
# An alert on site A, on client X's miner: its row fragment, and acknowledging it.
ROW_STATUS = {"owner": 200, "admin": 200, "siteowner_a": 200, "siteowner_b_ro": 404, "client_x": 200,
              "client_y": 404, "customer": 403, "guest": 403}  # fmt: skip
ACK_STATUS = {"owner": 302, "admin": 302, "siteowner_a": 302, "siteowner_b_ro": 404, "client_x": 403,
              "client_y": 403, "customer": 403, "guest": 403}  # fmt: skip


@pytest.mark.parametrize("user", [*PAGE_STATUS, None])
def test_list_pages_and_exports_by_role(client, farm, user):
    if user:
        client.force_login(farm.users[user])
    paths = ["/sites/", "/miners/", "/alerts/", "/jobs/"]
    for path, expected in zip(paths, PAGE_STATUS.get(user, (302,) * 4), strict=True):
        assert client.get(path).status_code == expected, (user, path)
        assert client.get(f"{path}?format=csv").status_code == expected, (user, path, "csv")


@pytest.mark.parametrize("user", ROW_STATUS)
def test_alert_row_and_actions_by_role(client, farm, user):
    from telemetry.models import Alert

    miner = farm.miners[("site-a", "client-x")]
    alert = alert_services.alert_raise(site=miner.site, miner=miner, alert_type="fan", severity="critical", message="m")
    client.force_login(farm.users[user])
    assert client.get(f"/alerts/{alert.pk}/row").status_code == ROW_STATUS[user]
    assert client.post("/alerts/acknowledge/", {"only": alert.pk}).status_code == ACK_STATUS[user]
    expected = "acknowledged" if ACK_STATUS[user] == 302 else "open"
    assert Alert.objects.get(pk=alert.pk).status == expected
