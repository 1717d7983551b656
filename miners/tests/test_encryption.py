"""Envelope encryption of miner network identity."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from hashinsight.security.crypto import DecryptionError, FernetKeyProvider, open_sealed, seal
from hashinsight.tests.factories import MinerFactory
from miners.models import Miner

pytestmark = pytest.mark.django_db

SECRET_IP = "10.77.12.34"
SECRET_PASSWORD = "s3cr3t-miner-pw"


@pytest.fixture
def miner(farm):
    m = MinerFactory(zone=farm.zone_a, site=farm.site_a, serial="ENC-1")
    m.set_identity(ip=SECRET_IP, mac="02:00:00:AA:BB:CC", username="root", password=SECRET_PASSWORD)
    m.save()
    return m


def test_identity_is_not_readable_in_the_database(miner):
    with connection.cursor() as cursor:
        cursor.execute("SELECT identity_sealed FROM miners_miner WHERE id = %s", [miner.pk])
        (raw,) = cursor.fetchone()
    assert raw.startswith("hie1.")
    assert SECRET_IP not in raw and SECRET_PASSWORD not in raw and "root" not in raw
    assert Miner.objects.get(pk=miner.pk).get_identity()["password"] == SECRET_PASSWORD


def test_each_record_has_its_own_data_key(farm):
    a = MinerFactory(zone=farm.zone_a, site=farm.site_a)
    b = MinerFactory(zone=farm.zone_a, site=farm.site_a)
    for m in (a, b):
        m.set_identity(ip=SECRET_IP)
    assert a.identity_sealed.split(".")[2] != b.identity_sealed.split(".")[2]


def test_sealed_value_moved_to_another_miner_does_not_open(miner, farm):
    other = MinerFactory(zone=farm.zone_a, site=farm.site_a, serial="ENC-2")
    other.identity_sealed = miner.identity_sealed
    with pytest.raises(DecryptionError):
        other.get_identity()


def test_rotation_keeps_old_values_readable_and_wrong_key_fails_closed():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = seal(b"payload", provider=FernetKeyProvider.from_settings(old))
    rotated = FernetKeyProvider.from_settings(new, old=old)
    assert open_sealed(token, provider=rotated) == b"payload"
    assert rotated.current_key_id != token.split(".")[1]
    with pytest.raises(DecryptionError):
        open_sealed(token, provider=FernetKeyProvider.from_settings(new))


def test_list_never_shows_identity_and_detail_only_to_site_managers(api, farm, miner):
    api.force_authenticate(farm.users["owner"])
    listing = api.get("/api/v1/miners", {"limit": 100}).content.decode()
    assert SECRET_IP not in listing and SECRET_PASSWORD not in listing
    assert api.get(f"/api/v1/miners/{miner.pk}").json()["network_identity"]["ip"] == SECRET_IP
    api.force_authenticate(farm.users["siteowner_a"])
    assert api.get(f"/api/v1/miners/{miner.pk}").json()["network_identity"]["password"] == SECRET_PASSWORD
    miner.customer = farm.client_x
    miner.save()
    api.force_authenticate(farm.users["client_x"])
    detail = api.get(f"/api/v1/miners/{miner.pk}")
    assert detail.status_code == 200
    assert detail.json()["network_identity"] is None
    assert SECRET_IP not in detail.content.decode()


def test_admin_list_and_form_never_show_identity(client, farm, miner):
    client.force_login(farm.users["owner"])
    for url in ("/admin/miners/miner/", f"/admin/miners/miner/{miner.pk}/change/"):
        html = client.get(url).content.decode()
        assert SECRET_IP not in html and SECRET_PASSWORD not in html and "hie1." not in html


def test_api_create_seals_identity(api, farm):
    api.force_authenticate(farm.users["owner"])
    body = {"site": farm.site_a.pk, "zone": farm.zone_a.pk, "model": Miner.objects.first().model_id, "serial": "API-1",
            "ip": "192.0.2.5", "password": "pw"}  # fmt: skip
    response = api.post("/api/v1/miners", body, format="json")
    assert response.status_code == 201
    assert response.json()["network_identity"]["ip"] == "192.0.2.5"
    assert "192.0.2.5" not in Miner.objects.get(serial="API-1").identity_sealed
