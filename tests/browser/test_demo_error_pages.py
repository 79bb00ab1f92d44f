"""Issue 17 item 8: under the run command's settings (demo mode, debug off) a buyer who reaches a missing page
sees the site's own "Page not found" page, at desktop and phone widths."""

from __future__ import annotations

import pytest

from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NOT_FOUND = (r"status of 404",)  # the browser logs the 404 answers this test asks for


@pytest.fixture
def demo(site, settings):
    """The live server with the run command's settings: demo mode, debug off, plain HTTP."""
    settings.DEBUG, settings.DEMO = False, True
    return site


def log_in(page, site, username: str, password: str) -> None:
    page.goto(site.url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def assert_styled_404(page) -> None:
    assert page.title() == "Page not found · Ticketing"
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert page.get_by_role("link", name="Browse events").first.is_visible()
    # The site's stylesheet applies (Django's debug page has none of it).
    sheets = page.evaluate("Array.from(document.styleSheets, (sheet) => sheet.href || '')")
    assert any("/static/css/site" in href for href in sheets), sheets
    assert "Traceback" not in page.content() and "DEBUG = True" not in page.content()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_missing_page_under_the_run_commands_settings_is_the_sites_404(demo, open_page, viewport):
    buyer = UserFactory(username=f"nina-{viewport}")
    buyer.set_password("a-long-Passphrase-42")
    buyer.save()
    others = make_booking(items=[(TicketTypeFactory(), 1)], buyer=UserFactory(), email="owner@example.com")
    page, shot = open_page(viewport, expected=NOT_FOUND)
    log_in(page, demo, buyer.username, "a-long-Passphrase-42")

    response = page.goto(demo.url + others.get_absolute_url())
    assert response.status == 404
    assert_styled_404(page)
    shot(page, "another-buyers-booking")

    response = page.goto(demo.url + "/bookings/?page=999")
    assert response.status == 404
    assert_styled_404(page)
    shot(page, "page-past-the-end")

    page.get_by_role("link", name="Browse events").first.click()
    page.wait_for_load_state()
    assert page.title().endswith("· Ticketing") and "Page not found" not in page.title()
