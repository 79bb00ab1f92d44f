"""Issue 17 item 10 in a real browser: a new buyer signs up from an event page and comes back to it, books, and
finds the booking under Upcoming (reference, ticket count) with an ended event's booking under Past."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def jazz():
    event = EventFactory(name="Summer Jazz Night", slug="summer-jazz-night", timezone="Europe/Oslo",
                         starts_at=timezone.now() + timedelta(days=30))
    return TicketTypeFactory(event=event, name="General admission", price=Decimal("35.00"), max_per_booking=6)


def booking_in_the_past(user) -> Booking:
    """A confirmed booking of an event that has since ended (dates moved back: test setup only)."""
    gala = TicketTypeFactory(event__name="Winter Gala", price=Decimal("20.00"))
    booking = make_booking(items=[(gala, 1)], buyer=user, email=user.email, status=Booking.Status.CONFIRMED)
    start = timezone.now() - timedelta(days=40)
    Event.objects.filter(pk=gala.event_id).update(starts_at=start, ends_at=start + timedelta(hours=3))
    return booking


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_sign_up_from_an_event_come_back_book_and_find_it_under_upcoming(site, open_page, jazz, viewport):
    event = jazz.event
    page, shot = open_page(viewport)
    page.goto(site.url + event.get_absolute_url())
    shot(page, "event")
    page.locator(".reserve-footer").get_by_role("link", name="sign up", exact=True).click()
    page.wait_for_url(re.compile(r"/accounts/signup/\?next="))
    page.get_by_label("Username").fill(f"mia-{viewport}")
    page.get_by_label("E-mail address").fill(f"mia-{viewport}@example.com")
    page.get_by_label(re.compile(r"^Password:?$")).fill("a-long-Passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    shot(page, "signup")
    page.get_by_role("button", name="Sign up").click()

    page.wait_for_url(site.url + event.get_absolute_url())  # back on the event she came from
    assert page.get_by_role("heading", name="Summer Jazz Night").is_visible()
    assert page.get_by_role("button", name=f"Log out (mia-{viewport})").is_visible()
    shot(page, "back-on-the-event")
    past = booking_in_the_past(get_user_model().objects.get(username=f"mia-{viewport}"))

    page.get_by_label('Number of “General admission” tickets').fill("2")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/"))
    booking = Booking.objects.get(buyer__username=f"mia-{viewport}", event=event)
    assert page.locator(".booking-ref code").inner_text() == booking.reference

    page.get_by_role("link", name="My bookings").click()
    page.wait_for_load_state()
    shot(page, "my-bookings")
    upcoming = page.locator("section", has=page.get_by_role("heading", name="Upcoming"))
    row = upcoming.get_by_role("row", name=re.compile("Summer Jazz Night"))
    assert booking.reference in row.inner_text()
    assert row.locator('[data-label="Tickets"]').inner_text().strip() == "2"
    assert "Reserved" in row.inner_text() and "CET" in row.inner_text()
    past_rows = page.locator("section", has=page.get_by_role("heading", name="Past"))
    assert past.reference in past_rows.get_by_role("row", name=re.compile("Winter Gala")).inner_text()
    assert "Summer Jazz Night" not in past_rows.inner_text()
    # Nothing sideways at either width.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
