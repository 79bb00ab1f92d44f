"""Honest states in a real browser, at desktop and phone widths: a refund on its way, a refund the
gateway refused, and tickets that are all reserved (not sold out) coming back when a hold ends.

Celery runs eagerly (root conftest) and the live server commits for real: a refund asked for on the
page is sent to the gateway inside the request, unless the test holds the task back (pending).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.services import booking_cancel
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.models import Refund
from payments.services import payment_authorize
from payments.tests.conftest import card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VIEWPORTS = ["desktop", "phone"]
REFUSING_CARD = "4000000000006660"  # the mock gateway refuses every refund of it


@pytest.fixture
def general():
    event = EventFactory(name="Harbour Lights", slug="harbour-lights", venue="Pier 7", city="Oslo",
                         timezone="Europe/Oslo", currency="EUR", starts_at=timezone.now() + timedelta(days=20))
    return TicketTypeFactory(event=event, name="General admission", price=Decimal("30.00"), capacity=2,
                             max_per_booking=2)


def paid_booking(tt, number="4111111111111111") -> Booking:
    """A guest's confirmed booking of two tickets, paid with `number` (captured on commit, eagerly)."""
    booking = make_booking(items=[(tt, 2)], email="guest@example.com")
    payment_authorize(booking=booking, card=card(number))
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    return booking


def shot_while_polling(shot, page, step: str):
    """A screenshot of a page whose rows htmx swaps: Playwright hides the caret by leaving `style=""`
    on inputs, which htmx would copy onto the swapped-in inputs (a style attribute the
    Content-Security-Policy refuses), so the empty attributes go once the picture is taken."""
    shot(page, step)
    page.evaluate("document.querySelectorAll('[style=\"\"]').forEach((e) => e.removeAttribute('style'))")


def ask_for_refund(page):
    page.get_by_text("Request a refund").click()
    page.get_by_role("button", name="Refund my tickets").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_pending_refund_shows_its_tickets_being_refunded_and_no_second_refund(site, open_page, general, viewport):
    booking = paid_booking(general)
    page, shot = open_page(viewport)
    page.goto(f"{site.url}{booking.get_absolute_url()}?token={booking.access_token}")
    assert page.locator(".status strong").inner_text() == "Confirmed"

    with mock.patch("payments.tasks.refund_process_task.delay"):  # the worker has not got to it yet
        ask_for_refund(page)

    assert "Your refund has been requested" in page.locator(".messages").inner_text()
    assert page.locator(".status strong").inner_text() == "Refund pending"
    assert "your tickets are being refunded" in page.locator(".refund-state").inner_text()
    assert page.locator(".ticket-being-refunded").count() == 2
    assert page.locator("svg.qr").count() == 0
    assert page.get_by_text("Request a refund").count() == 0
    assert page.get_by_role("button", name="Refund my tickets").count() == 0
    shot(page, "booking-refund-pending")

    page.reload()  # the message is shown once; the state stays
    assert page.locator(".messages").count() == 0 or "requested" not in page.locator(".messages").inner_text()
    assert page.locator(".status strong").inner_text() == "Refund pending"

    page.get_by_role("link", name=re.compile("Open “General admission” ticket 1")).click()
    page.wait_for_url(re.compile(r"/tickets/[0-9a-f-]{36}/\?token="))
    assert "Being refunded" in page.locator(".facts").inner_text()
    assert "This ticket is being refunded: do not use it." in page.locator("main").inner_text()
    assert page.locator("svg.qr").count() == 0
    shot(page, "ticket-refund-pending")
    assert Refund.objects.get().status == Refund.Status.PENDING


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_refund_the_gateway_refused_says_the_organizer_has_been_told(site, open_page, general, viewport):
    booking = paid_booking(general, number=REFUSING_CARD)
    page, shot = open_page(viewport)
    page.goto(f"{site.url}{booking.get_absolute_url()}?token={booking.access_token}")

    ask_for_refund(page)

    messages = page.locator(".messages").inner_text()
    assert "The refund did not go through; the organizer has been told." in messages
    assert "requested" not in messages
    assert "The refund did not go through" in page.locator(".refund-state").inner_text()
    assert page.locator(".status strong").inner_text() == "Confirmed"
    assert page.locator("svg.qr").count() == 2  # the tickets stay valid
    assert page.get_by_role("button", name="Refund my tickets").count() == 0
    shot(page, "booking-refund-refused")
    assert Refund.objects.get().status == Refund.Status.FAILED


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_tickets_held_by_others_read_all_reserved_and_come_back_when_the_hold_ends(site, open_page, general,
                                                                                     viewport):
    other = make_booking(items=[(general, 2)], email="other@example.com")
    page, shot = open_page(viewport)
    page.goto(site.url + general.event.get_absolute_url())

    row = page.locator("tr.ticket-row", has_text="General admission")
    assert row.locator(".badge").inner_text() == "All reserved, check back soon"
    assert "Sold out" not in page.locator("main").inner_text()
    assert page.get_by_label("Number of “General admission” tickets").is_disabled()
    shot_while_polling(shot, page, "all-reserved")

    booking_cancel(booking=other)  # the other buyer gives up: the cached rows are forgotten at once

    # The rows refresh themselves (htmx, every few seconds) and the form is still there.
    row.locator(".badge", has_text="Only 2 left").wait_for()
    quantity = page.get_by_label("Number of “General admission” tickets")
    assert quantity.is_enabled()
    shot_while_polling(shot, page, "back-on-sale")
    quantity.fill("2")
    page.get_by_label("E-mail address").fill("late@example.com")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/\?token="))
    assert Booking.objects.get(email="late@example.com").status == Booking.Status.RESERVED


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_sold_out_tickets_read_sold_out(site, open_page, general, viewport):
    paid_booking(general)
    page, shot = open_page(viewport)
    page.goto(site.url + general.event.get_absolute_url())
    row = page.locator("tr.ticket-row", has_text="General admission")
    assert row.locator(".badge").inner_text() == "Sold out"
    shot(page, "sold-out")
