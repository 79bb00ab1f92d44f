"""Issue 17 item 1 in a real browser: an organizer in Oslo enters 19:30 in the admin, and the buyer site
says 19:30 CET (the browser itself runs in Europe/Berlin, the server in UTC)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from backoffice.tests.admin_support import PASSWORD, make_organizer
from events.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def organizer(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_organizer("Oslo Jazz Club", "olga")


def winter_saturday() -> str:
    """A Saturday in December of next year: Oslo is on CET (UTC+1) then."""
    day = datetime(timezone.now().year + 1, 12, 5)
    while day.weekday() != 5:
        day = day.replace(day=day.day + 1)
    return day.date().isoformat()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_event_entered_at_19_30_in_oslo_shows_19_30_cet_on_the_site(site, open_page, organizer, viewport):
    # Chromium asks the admin pages (no icon of their own) for /favicon.ico: a 404 logged as a console error.
    page, shot = open_page(viewport, expected=(r"status of 404",))
    day = winter_saturday()

    page.goto(site.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.url + "/admin/")

    page.goto(site.url + "/admin/events/event/add/")
    page.locator('input[name="name"]').fill("Fjord Jazz")
    page.locator('input[name="venue"]').fill("Harbour Hall")
    page.locator('input[name="city"]').fill("Oslo")
    page.locator('select[name="category"]').select_option("music")
    page.locator('select[name="timezone"]').select_option("Europe/Oslo")
    page.locator('select[name="currency"]').select_option("NOK")
    page.locator('input[name="starts_at_0"]').fill(day)
    page.locator('input[name="starts_at_1"]').fill("19:30")
    page.locator('input[name="ends_at_0"]').fill(day)
    page.locator('input[name="ends_at_1"]').fill("23:00")
    assert "(the event's time zone)" in page.locator(".field-starts_at").inner_text()
    warnings = page.locator(".timezonewarning")  # Django's "You are 1 hour ahead of server time"
    assert warnings.count() and not any(warnings.nth(i).is_visible() for i in range(warnings.count()))
    page.locator(".add-row a", has_text=re.compile("Add another ticket type", re.I)).click()
    page.locator('input[name="ticket_types-0-name"]').fill("General")
    page.locator('input[name="ticket_types-0-price"]').fill("350")
    page.locator('input[name="ticket_types-0-capacity"]').fill("100")
    shot(page, "event-form")
    page.locator('input[name="_continue"]').click()
    page.wait_for_url(re.compile(r"/admin/events/event/[0-9a-f-]{36}/change/"))

    event = Event.objects.get(name="Fjord Jazz")
    oslo = zoneinfo.ZoneInfo("Europe/Oslo")
    assert event.starts_at == datetime.fromisoformat(f"{day}T19:30").replace(tzinfo=oslo)
    assert event.starts_at.astimezone(UTC).hour == 18
    # Shown back as entered, labelled with the zone.
    assert page.locator('input[name="starts_at_1"]').input_value() == "19:30:00"
    assert "Starts at (Europe/Oslo)" in page.locator(".field-starts_at").inner_text()
    shot(page, "event-saved")

    page.goto(site.url + "/admin/events/event/")
    row = page.locator("#result_list tbody tr", has_text="Fjord Jazz")
    assert "19:30 CET" in row.inner_text()
    row.locator('input[name="_selected_action"]').check()
    page.locator('select[name="action"]').select_option("publish_events")
    page.locator('button[name="index"]').click()
    page.wait_for_load_state()
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
    shot(page, "published")

    buyer = page  # the buyer site is public: the same browser shows it
    buyer.goto(site.url + "/")
    card = buyer.locator(".card", has_text="Fjord Jazz")
    assert "19:30 CET" in card.inner_text()
    shot(buyer, "home")
    buyer.goto(site.url + event.get_absolute_url())
    when = buyer.locator("dd", has=buyer.locator("time")).first.inner_text()
    assert "19:30" in when and "23:00 CET" in when, when
    shot(buyer, "event")
