"""Login throttling, session lifetime and rotation, logout, password change and reset."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.utils import timezone

from hashinsight.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def login(client, username, password, ip="203.0.113.5"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_works_and_rotates_the_session_id(client):
    user = UserFactory(role="OWNER")
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    response = login(client, user.username, PASSWORD)
    assert response.status_code == 302
    assert client.session.session_key != before
    assert client.session.get_expiry_age() == 8 * 60 * 60


def test_account_is_locked_after_five_failures_even_from_new_ips(client):
    user = UserFactory()
    for i in range(5):
        login(client, user.username, "wrong-password", ip=f"198.51.100.{i}")
    response = login(client, user.username, PASSWORD, ip="198.51.100.99")
    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()


def test_ip_is_locked_after_five_failures_across_accounts(client):
    users = [UserFactory() for _ in range(6)]
    for u in users[:5]:
        login(client, u.username, "wrong-password", ip="192.0.2.44")
    assert login(client, users[5].username, PASSWORD, ip="192.0.2.44").status_code == 429
    assert login(client, users[5].username, PASSWORD, ip="192.0.2.45").status_code == 302


def test_session_expires_after_eight_hours(client):
    user = UserFactory(role="OWNER")
    login(client, user.username, PASSWORD)
    assert client.get("/").status_code == 200
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_logout_destroys_the_session(client):
    user = UserFactory(role="OWNER")
    login(client, user.username, PASSWORD)
    key = client.session.session_key
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/").status_code == 302


def test_password_change_applies_validators(client):
    user = UserFactory(role="CLIENT")
    client.force_login(user)
    weak = client.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": "123", "new_password2": "123"}
    )
    assert weak.status_code == 200 and weak.context["form"].errors
    good = "a-much-better-passphrase-42"
    ok = client.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": good, "new_password2": good}
    )
    assert ok.status_code == 302
    user.refresh_from_db()
    assert user.check_password(good)


def test_password_reset_sends_a_link(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = UserFactory(email="ops@example.test")
    client.post("/accounts/password/reset/", {"email": user.email})
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_csrf_is_enforced_on_the_portal(settings):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    user = UserFactory()
    assert login(strict, user.username, PASSWORD).status_code == 403


def test_interface_speaks_chinese(client):
    page = client.get("/calculator/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "挖矿收益计算器" in page.content.decode()


def test_every_message_has_a_chinese_translation():
    from pathlib import Path

    import polib
    from django.conf import settings

    po = polib.pofile(str(Path(settings.BASE_DIR) / "locale/zh_Hans/LC_MESSAGES/django.po"))
    missing = [e.msgid for e in po if not e.translated() and not e.obsolete]
    assert missing == []
