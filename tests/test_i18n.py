"""The site speaks the languages it is written in (settings.LANGUAGES), whatever the browser asks for."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", ["de", "fr-CA,fr;q=0.9", "en-GB", ""])
def test_pages_are_in_english_whatever_the_browser_prefers(client, accept):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert [code for code, _name in settings.LANGUAGES] == ["en"]
