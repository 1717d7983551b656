"""Every write to miners, portfolios and the catalog — service, admin or API — publishes its event,
and the summaries it affects are refreshed (issue 6: "stale caches after edits")."""

from decimal import Decimal

import pytest

from hashinsight.core import cache as cache_helper
from hashinsight.events.models import OutboxEvent
from hashinsight.tests.factories import MinerFactory, MinerModelFactory, PortfolioEntryFactory
from miners import services
from miners.models import Miner, MinerModel, PortfolioEntry

pytestmark = pytest.mark.django_db


def events(event_type):
    return list(OutboxEvent.objects.filter(event_type=event_type).order_by("created_at"))


def active(site) -> int:
    return cache_helper.get("site_summary", id=site.pk).value["by_status"].get("active", 0)


def nominal_kw(site) -> Decimal:
    return Decimal(cache_helper.get("site_summary", id=site.pk).value["nominal_kw"])


def miner_form(miner, **changes) -> dict:
    data = {
        "site": miner.site_id, "zone": miner.zone_id, "customer": miner.customer_id or "", "model": miner.model_id,
        "serial": miner.serial, "asset_tag": miner.asset_tag, "rack": miner.rack, "shelf": miner.shelf or "",
        "slot": miner.slot or "", "status": miner.status, "firmware": miner.firmware, "pool_url": miner.pool_url,
        "pool_worker": miner.pool_worker,
    }  # fmt: skip
    return {**data, **changes}


# --- services -----------------------------------------------------------------------------------


def test_moving_a_miner_publishes_both_sites_and_refreshes_both_summaries(farm, django_capture_on_commit_callbacks):
    miner = farm.miners[("site-a", "client-x")]
    before_a, before_b = active(farm.site_a), active(farm.site_b)  # both summaries cached now
    with django_capture_on_commit_callbacks(execute=True):
        services.miner_update(actor=farm.users["owner"], miner=miner, site=farm.site_b, zone=farm.zone_b)
    [event] = events("miner.updated")
    assert event.payload == {
        "miner_id": miner.pk, "site_id": farm.site_b.pk, "old_site_id": farm.site_a.pk,
        "customer_id": farm.client_x.pk, "old_customer_id": farm.client_x.pk, "model_id": miner.model_id,
    }  # fmt: skip
    assert event.status == OutboxEvent.Status.DONE
    assert Miner.objects.get(pk=miner.pk).site_id == farm.site_b.pk
    assert (active(farm.site_a), active(farm.site_b)) == (before_a - 1, before_b + 1)


def test_a_status_change_refreshes_its_site(farm, django_capture_on_commit_callbacks):
    miner = farm.miners[("site-a", "own")]
    before = active(farm.site_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.miner_update(actor=farm.users["siteowner_a"], miner=miner, status=Miner.Status.OFFLINE)
    assert [e.payload["site_id"] for e in events("miner.updated")] == [farm.site_a.pk]
    assert active(farm.site_a) == before - 1


def test_a_refused_update_publishes_nothing(farm):
    from hashinsight.core.errors import DomainError

    miner = farm.miners[("site-b", "own")]
    with pytest.raises(DomainError):  # a read-only grant on site B
        services.miner_update(actor=farm.users["siteowner_b_ro"], miner=miner, status=Miner.Status.OFFLINE)
    assert events("miner.updated") == []
    assert Miner.objects.get(pk=miner.pk).status == Miner.Status.ACTIVE


def test_deleting_a_miner_publishes_and_refreshes_its_site(farm, django_capture_on_commit_callbacks):
    miner = farm.miners[("site-a", "client-y")]
    before = active(farm.site_a)
    with django_capture_on_commit_callbacks(execute=True):
        services.miner_delete(actor=farm.users["siteowner_a"], miner=miner)
    [event] = events("miner.deleted")
    assert event.payload["miner_id"] == miner.pk
    assert event.payload["site_id"] == farm.site_a.pk
    assert event.payload["customer_id"] == farm.client_y.pk
    assert not Miner.objects.filter(pk=miner.pk).exists()
    assert active(farm.site_a) == before - 1


def test_catalog_change_refreshes_every_site_and_portfolio_using_the_model(farm, django_capture_on_commit_callbacks):
    model = farm.miners[("site-a", "own")].model  # every farm miner and portfolio entry uses it
    user = farm.users["customer"]
    assert nominal_kw(farm.site_a) == Decimal("10.5")  # 3 × 3,500 W
    assert cache_helper.get("user_portfolio", id=user.pk).value["power_kw"] == "35.000"  # 10 × 3,500 W
    with django_capture_on_commit_callbacks(execute=True):
        services.miner_model_update(actor=farm.users["owner"], miner_model=model, power_w=Decimal("3000"))
    [event] = events("miner_model.changed")
    assert event.payload == {"model_id": model.pk, "action": "updated"}
    assert MinerModel.objects.get(pk=model.pk).power_w == Decimal("3000")
    assert nominal_kw(farm.site_a) == nominal_kw(farm.site_b) == Decimal("9")
    assert cache_helper.get("user_portfolio", id=user.pk).value["power_kw"] == "30.000"


def test_a_model_in_use_is_not_deleted_and_nothing_is_published(farm):
    from hashinsight.core.errors import DomainError

    model = farm.miners[("site-a", "own")].model
    with pytest.raises(DomainError) as refused:
        services.miner_model_delete(actor=farm.users["owner"], miner_model=model)
    assert refused.value.status == 409
    assert MinerModel.objects.filter(pk=model.pk).exists()
    assert events("miner_model.changed") == []


def test_a_model_only_in_a_portfolio_is_not_deleted_either(db):
    from hashinsight.core.errors import DomainError

    entry = PortfolioEntryFactory(model=MinerModelFactory(code="only-in-portfolio", name="P1"))
    with pytest.raises(DomainError):
        services.miner_model_delete(actor=None, miner_model=entry.model)
    assert MinerModel.objects.filter(pk=entry.model_id).exists()


def test_moving_a_portfolio_entry_refreshes_both_users(farm):
    entry = farm.portfolio["customer"]
    services.portfolio_entry_update(entry=entry, user=farm.users["customer2"])
    assert sorted(e.payload["user_id"] for e in events("portfolio.changed")) == sorted(
        [farm.users["customer"].pk, farm.users["customer2"].pk]
    )
    assert PortfolioEntry.objects.get(pk=entry.pk).user_id == farm.users["customer2"].pk


# --- admin --------------------------------------------------------------------------------------


def test_admin_miner_change_goes_through_the_service(client, farm, django_capture_on_commit_callbacks):
    miner = farm.miners[("site-a", "own")]
    before = active(farm.site_a)
    client.force_login(farm.users["siteowner_a"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/miners/miner/{miner.pk}/change/", miner_form(miner, status="maintenance"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Miner.objects.get(pk=miner.pk).status == "maintenance"
    assert [e.payload["miner_id"] for e in events("miner.updated")] == [miner.pk]
    assert active(farm.site_a) == before - 1


def test_admin_miner_add_goes_through_the_service(client, farm):
    template = farm.miners[("site-a", "own")]
    client.force_login(farm.users["owner"])
    data = miner_form(template, serial="ADMIN-NEW-1", customer="")
    response = client.post("/admin/miners/miner/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Miner.objects.get(serial="ADMIN-NEW-1")
    assert [e.payload["miner_id"] for e in events("miner.created")] == [created.pk]


def test_admin_miner_delete_goes_through_the_service(client, farm):
    miner = farm.miners[("site-a", "own")]
    client.force_login(farm.users["siteowner_a"])
    response = client.post(f"/admin/miners/miner/{miner.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Miner.objects.filter(pk=miner.pk).exists()
    assert [e.payload["miner_id"] for e in events("miner.deleted")] == [miner.pk]


def test_admin_bulk_delete_publishes_one_event_per_miner(client, farm):
    doomed = [farm.miners[("site-a", "own")], farm.miners[("site-a", "client-x")]]
    client.force_login(farm.users["siteowner_a"])
    response = client.post(
        "/admin/miners/miner/",
        {"action": "delete_selected", "_selected_action": [m.pk for m in doomed], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Miner.objects.filter(pk__in=[m.pk for m in doomed]).exists()
    assert sorted(e.payload["miner_id"] for e in events("miner.deleted")) == sorted(m.pk for m in doomed)


def test_admin_portfolio_change_goes_through_the_service(client, farm, django_capture_on_commit_callbacks):
    entry = farm.portfolio["customer"]
    user = farm.users["customer"]
    assert cache_helper.get("user_portfolio", id=user.pk).value["hashrate_ths"] == "2000.00"
    client.force_login(farm.users["admin"])
    data = {"user": user.pk, "model": entry.model_id, "quantity": 3, "power_price_usd_per_kwh": "0.05", "label": ""}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/miners/portfolioentry/{entry.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PortfolioEntry.objects.get(pk=entry.pk).quantity == 3
    assert [e.payload["user_id"] for e in events("portfolio.changed")] == [user.pk]
    assert cache_helper.get("user_portfolio", id=user.pk).value["hashrate_ths"] == "600.00"


def test_admin_catalog_change_goes_through_the_service(client, farm, django_capture_on_commit_callbacks):
    model = farm.miners[("site-a", "own")].model
    assert nominal_kw(farm.site_a) == Decimal("10.5")
    client.force_login(farm.users["owner"])
    data = {
        "vendor": model.vendor, "name": model.name, "code": model.code, "hashrate_ths": model.hashrate_ths,
        "power_w": "3200", "cooling": model.cooling, "release_date": "", "source": "",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/miners/minermodel/{model.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MinerModel.objects.get(pk=model.pk).power_w == Decimal("3200")
    assert [e.payload for e in events("miner_model.changed")] == [{"model_id": model.pk, "action": "updated"}]
    assert nominal_kw(farm.site_a) == Decimal("9.6")


# --- API ----------------------------------------------------------------------------------------


def test_api_catalog_writes_publish(api, farm, django_capture_on_commit_callbacks):
    model = farm.miners[("site-a", "own")].model
    assert nominal_kw(farm.site_b) == Decimal("10.5")
    api.force_authenticate(farm.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/v1/miner-models/{model.pk}", {"power_w": "3400"}, format="json")
    assert response.status_code == 200, response.json()
    assert MinerModel.objects.get(pk=model.pk).power_w == Decimal("3400")
    assert nominal_kw(farm.site_b) == Decimal("10.2")

    body = {"vendor": "MicroBT", "name": "M60S", "code": "m60s-186t", "hashrate_ths": "186", "power_w": "3441"}
    response = api.post("/api/v1/miner-models", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()["id"]
    assert api.delete(f"/api/v1/miner-models/{created}").status_code == 204
    assert not MinerModel.objects.filter(pk=created).exists()
    assert api.delete(f"/api/v1/miner-models/{model.pk}").status_code == 409
    assert [(e.payload["model_id"], e.payload["action"]) for e in events("miner_model.changed")] == [
        (model.pk, "updated"),
        (created, "created"),
        (created, "deleted"),
    ]


def test_api_miner_update_and_delete_publish(api, farm):
    miner = farm.miners[("site-a", "client-x")]
    other = MinerFactory(zone=farm.zone_a, site=farm.site_a)
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.patch(f"/api/v1/miners/{miner.pk}", {"status": "offline"}, format="json").status_code == 200
    assert api.delete(f"/api/v1/miners/{other.pk}").status_code == 204
    assert [e.payload["miner_id"] for e in events("miner.updated")] == [miner.pk]
    assert [e.payload["miner_id"] for e in events("miner.deleted")] == [other.pk]
    assert Miner.objects.get(pk=miner.pk).status == "offline"
