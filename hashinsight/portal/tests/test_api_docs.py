"""Swagger UI and ReDoc come from the project's own static files (no CDN); the favicon answers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')


def _references(html: str) -> list[str]:
    return REFERENCE.findall(html)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_reference_only_local_static_files_that_exist(client, farm, url):
    client.force_login(farm.users["owner"])
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    references = _references(html)
    static = [r for r in references if r.startswith("/static/")]
    assert static, "the page loads nothing from /static/"
    for ref in references:
        path = urlsplit(ref).path
        # Everything else the page loads is itself: Swagger's init script is "?script" on the same URL.
        assert ref.startswith("/static/") or path == url, ref
    for ref in static:
        assert finders.find(urlsplit(ref).path.removeprefix("/static/")), f"{ref} is not a static file"


def test_swagger_init_script_is_a_separate_local_file(client, farm):
    client.force_login(farm.users["owner"])
    html = client.get("/api/docs/").content.decode()
    assert "<script>" not in html and "<style>" not in html  # nothing inline for the policy to block
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in s for s in scripts)
    init = next(s for s in scripts if s.startswith("/api/docs/"))
    script = client.get(init)
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    body = script.content.decode()
    assert "SwaggerUIBundle(" in body and '"/api/schema/"' in body
    assert "http://" not in body and "https://" not in body


def test_redoc_allows_only_its_own_styles(client, farm):
    client.force_login(farm.users["owner"])
    response = client.get("/api/redoc/")
    policy = {d.split(" ", 1)[0]: d for d in (p.strip() for p in response["Content-Security-Policy"].split(";"))}
    nonce = re.search(r'data-style-nonce="([^"]+)"', response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in policy["style-src"]
    assert "unsafe" not in response["Content-Security-Policy"]
    assert policy["script-src"] == "script-src 'self'"
    assert policy["worker-src"] == "worker-src 'self' blob:"
    # The exception is this page's alone.
    swagger = client.get("/api/docs/")["Content-Security-Policy"]
    assert "nonce-" not in swagger and "worker-src" not in swagger


def test_docs_pages_are_not_in_the_schema(client, farm):
    client.force_login(farm.users["owner"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/redoc/" not in schema and "/api/docs/" not in schema


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/img/favicon.svg"
    assert finders.find("img/favicon.svg")
    assert "max-age=86400" in response["Cache-Control"]
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
