"""The Authorization header is read by one helper (``bearer_credentials``) for API tokens and edge
device tokens alike: a malformed header is refused the same way on both."""

import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/sites/", "/api/edge/v1/inventory"]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "bearer  x y", "Bearer h\xe9llo".encode().decode("latin-1")]
)
def test_malformed_bearer_header_is_refused_as_malformed(api, url, header):
    response = api.get(url, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["message"] == "Malformed Authorization header."


@pytest.mark.parametrize("url", ENDPOINTS)
def test_wellformed_unknown_tokens_are_refused_by_their_own_check(api, url):
    response = api.get(url, HTTP_AUTHORIZATION="Bearer hi_nope_nope")
    assert response.status_code == 401
    assert response.json()["message"] != "Malformed Authorization header."


def test_token_keyword_is_for_api_tokens_only(api):
    # "Token …" is an API-token spelling; the edge API does not read it, so the request is unauthenticated.
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION="Token x y").status_code == 401
    response = api.get("/api/edge/v1/inventory", HTTP_AUTHORIZATION="Token x y")
    assert response.status_code in (401, 403)
    assert response.json()["message"] != "Malformed Authorization header."
