"""/metrics reads the database-derived figures at most once per METRICS_DB_CACHE_S, so scrapes (or
anonymous hits, where it is public) cost no queries in between."""

import pytest

from hashinsight.events.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_scrapes_inside_the_cache_period_cost_no_queries(client, settings, django_assert_num_queries):
    settings.METRICS_DB_CACHE_S = 10
    OutboxEvent.objects.create(event_type="portfolio.changed", aggregate="user:1", payload={"user_id": 1})
    first = client.get("/metrics").content.decode()
    assert 'hashinsight_outbox_events{status="pending"} 1.0' in first
    OutboxEvent.objects.create(event_type="portfolio.changed", aggregate="user:2", payload={"user_id": 2})
    with django_assert_num_queries(0):
        again = client.get("/metrics").content.decode()
    assert 'hashinsight_outbox_events{status="pending"} 1.0' in again  # the cached figure, by design


def test_without_a_cache_period_every_scrape_reads_the_database(client, settings):
    settings.METRICS_DB_CACHE_S = 0
    OutboxEvent.objects.create(event_type="portfolio.changed", aggregate="user:1", payload={"user_id": 1})
    client.get("/metrics")
    OutboxEvent.objects.create(event_type="portfolio.changed", aggregate="user:2", payload={"user_id": 2})
    assert 'hashinsight_outbox_events{status="pending"} 2.0' in client.get("/metrics").content.decode()
