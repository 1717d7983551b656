import pytest
from django.core.management import call_command

from hashinsight.accounts.models import User
from miners.models import Miner
from sites.models import Site

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_writes_credentials_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--miners", "60")
    call_command("seed_demo", "--miners", "60")
    assert Site.objects.count() == 3
    assert Miner.objects.count() == 60
    assert set(User.objects.values_list("role", flat=True)) == {
        "OWNER",
        "ADMIN",
        "MINING_SITE_OWNER",
        "CLIENT",
        "CUSTOMER",
        "GUEST",
    }
    lines = (tmp_path / "demo-credentials.txt").read_text().splitlines()
    assert len(lines) == 6
    owner_password = lines[0].split()[-1]
    assert User.objects.get(username="owner").check_password(owner_password)
    assert len(set(Site.objects.values_list("timezone", flat=True))) == 3
    assert Miner.objects.values("model").distinct().count() >= 5
