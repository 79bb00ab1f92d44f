"""Checkout details (issue 17, item 9) in a real browser, at desktop and phone widths, with JavaScript on
and off: quantities that start empty (typing 2 gives 2), a live total, the card number grouped as typed
and one MM/YY expiry field, Post/Redirect/Get after a refused payment or reservation (a reload sends
nothing), a confirmation before cancelling a hold, "Print ticket" only with JavaScript, the QR code first
on a phone, and the buyer, booking reference and "1 of 2" on the ticket and its print.

Screenshots of every step go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.services import LineItem, booking_reserve
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.gateway import Card
from payments.models import Payment
from payments.services import payment_authorize

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DECLINED_CARD = "4000000000000002"
BOOKING_URL = re.compile(r"/bookings/[0-9a-f-]{36}/\?token=[^/]+$")


@pytest.fixture
def festival():
    event = EventFactory(name="Harbour Festival", slug="harbour-festival", venue="Pier 4", city="Oslo",
                         category=Event.Category.FESTIVAL, timezone="Europe/Oslo", currency="EUR",
                         starts_at=timezone.now() + timedelta(days=20))
    general = TicketTypeFactory(event=event, name="Day pass", price=Decimal("35.00"), capacity=100,
                                max_per_booking=6, position=0)
    kids = TicketTypeFactory(event=event, name="Child", price=Decimal("28.00"), capacity=3, max_per_booking=3,
                             position=1)
    table = TicketTypeFactory(event=event, name="Table for ten", price=Decimal("1200.00"), capacity=5,
                              max_per_booking=2, position=2)
    return event, general, kids, table


def qty(page, name: str):
    return page.get_by_label(f"Number of “{name}” tickets")


def hold(event, items, email="held@example.com") -> Booking:
    return booking_reserve(event=event, items=[LineItem(tt, n) for tt, n in items], email=email)


def booking_path(booking: Booking, suffix: str = "") -> str:
    return f"/bookings/{booking.pk}/{suffix}?token={booking.access_token}"


def fill_card(page, number: str, *, expiry: str = "12/99"):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry date (MM/YY)").fill(expiry)
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")


def posts(page) -> list[str]:
    """The POST requests the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_typing_2_gives_2_the_total_follows_and_the_card_is_grouped_as_typed(site, open_page, festival, viewport):
    event, general, kids, table = festival
    page, shot = open_page(viewport)
    page.goto(site.url + event.get_absolute_url())

    day = qty(page, "Day pass")
    assert day.input_value() == "" and day.get_attribute("placeholder") == "0"  # nothing to type over
    total = page.locator(".live-total")
    assert total.inner_text() == "Total: €0.00"
    day.click()
    page.keyboard.type("2")
    assert day.input_value() == "2"
    assert total.inner_text() == "Total: €70.00"
    qty(page, "Child").click()
    page.keyboard.type("1")
    assert total.inner_text() == "Total: €98.00"
    shot(page, "total")
    qty(page, "Table for ten").fill("1")
    assert total.inner_text() == "Total: €1,298.00"
    qty(page, "Table for ten").fill("")
    assert total.inner_text() == "Total: €98.00"

    page.get_by_label("E-mail address").fill(f"buyer-{viewport}@example.com")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(BOOKING_URL)
    assert "€98.00" in page.locator("table.items tfoot").inner_text()  # the server's price agrees

    number = page.get_by_label("Card number")
    number.click()
    page.keyboard.type("4111111111111111")
    assert number.input_value() == "4111 1111 1111 1111"
    expiry = page.get_by_label("Expiry date (MM/YY)")
    expiry.click()
    page.keyboard.type("1299")
    assert expiry.input_value() == "12/99"
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")
    shot(page, "card-typed")
    page.get_by_role("button", name="Pay €98.00").click()
    page.wait_for_load_state()
    assert page.locator(".status strong").inner_text() == "Confirmed"
    shot(page, "confirmed")


def test_the_total_survives_the_availability_refresh(site, open_page, festival):
    event, general, kids, table = festival
    page, shot = open_page("desktop")
    page.goto(site.url + event.get_absolute_url())
    qty(page, "Child").fill("2")
    assert page.locator(".live-total").inner_text() == "Total: €56.00"

    hold(event, [(kids, 1)])  # someone else holds one: the poll brings the new rows
    with page.expect_response(lambda r: "/availability/" in r.url, timeout=12_000):
        pass
    page.wait_for_function(f"document.querySelector('#avail-{kids.pk}').innerText.trim() === 'Only 2 left'")

    assert qty(page, "Child").input_value() == "2"
    assert page.locator(".live-total").inner_text() == "Total: €56.00"
    shot(page, "after-refresh")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_without_javascript_quantities_start_empty_and_the_purchase_works(site, open_page, festival, viewport):
    event, general, kids, table = festival
    page, shot = open_page(viewport, javascript=False)
    page.goto(site.url + event.get_absolute_url())

    assert qty(page, "Day pass").input_value() == ""
    assert not page.locator(".live-total").is_visible()  # the enhancement stays hidden
    qty(page, "Day pass").fill("2")  # the other types stay empty: the server reads them as 0
    page.get_by_label("E-mail address").fill(f"nojs-{viewport}@example.com")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(BOOKING_URL)

    fill_card(page, "4111 1111 1111 1111", expiry="12 / 2099")  # spaces and a four-digit year, as typed
    shot(page, "card")
    page.get_by_role("button", name="Pay €70.00").click()
    page.wait_for_load_state()
    assert page.locator(".status strong").inner_text() == "Confirmed"
    shot(page, "confirmed")


@pytest.mark.parametrize(("viewport", "javascript"), [("desktop", True), ("phone", True), ("desktop", False)])
def test_reloading_after_a_declined_card_sends_nothing_again(site, open_page, festival, viewport, javascript):
    event, general, kids, table = festival
    booking = hold(event, [(general, 1)])
    page, shot = open_page(viewport, javascript=javascript)
    page.goto(site.url + booking_path(booking))

    fill_card(page, DECLINED_CARD)
    page.get_by_role("button", name="Pay €35.00").click()
    page.wait_for_load_state()

    assert page.url == site.url + booking_path(booking)  # redirected back: the pay POST is not the page
    assert "Your card was declined." in page.locator(".form-errors").inner_text()
    assert page.get_by_label("Card number").input_value() == ""  # never kept
    assert page.get_by_label("Name on card").input_value() == "Ada Lovelace"
    shot(page, "declined")

    sent = posts(page)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.reload()
    page.wait_for_load_state()

    assert (sent, dialogs) == ([], [])  # no "resubmit the form?" and no second payment
    assert Payment.objects.filter(booking=booking).count() == 1
    assert page.locator(".form-errors").count() == 0  # said once
    assert page.locator(".status strong").inner_text() == "Reserved"
    shot(page, "reloaded")


@pytest.mark.parametrize("javascript", [True, False])
def test_reloading_after_a_refused_reservation_sends_nothing_again(site, open_page, festival, javascript):
    event, general, kids, table = festival
    page, shot = open_page("desktop", javascript=javascript)
    page.goto(site.url + event.get_absolute_url())
    qty(page, "Child").fill("3")
    page.get_by_label("E-mail address").fill("late@example.com")
    hold(event, [(kids, 2)], email="fast@example.com")  # someone was quicker

    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_load_state()

    assert page.url == site.url + event.get_absolute_url() + "#tickets-heading"
    assert "Only 1 'Child' ticket left." in page.locator(".form-errors").inner_text()
    assert qty(page, "Child").input_value() == "3"  # what was typed stays
    assert page.get_by_label("E-mail address").input_value() == "late@example.com"
    shot(page, "refused")

    sent = posts(page)
    page.reload()
    page.wait_for_load_state()

    assert sent == []
    assert page.locator(".form-errors").count() == 0
    assert not Booking.objects.filter(email="late@example.com").exists()
    shot(page, "reloaded")


@pytest.mark.parametrize(("viewport", "javascript"), [("phone", True), ("desktop", False)])
def test_cancelling_a_hold_asks_first(site, open_page, festival, viewport, javascript):
    event, general, kids, table = festival
    booking = hold(event, [(general, 2)])
    page, shot = open_page(viewport, javascript=javascript)
    page.goto(site.url + booking_path(booking))

    page.get_by_role("link", name="Cancel reservation").click()
    page.wait_for_url(f"**{booking_path(booking, 'cancel/')}")
    assert page.get_by_role("heading", name="Cancel this reservation?").is_visible()
    assert "2 × Day pass" in page.locator("main").inner_text()
    shot(page, "confirm")
    page.get_by_role("link", name="Keep it").click()
    page.wait_for_url(f"**{booking_path(booking)}")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED

    page.get_by_role("link", name="Cancel reservation").click()
    page.get_by_role("button", name="Yes, cancel").click()
    page.wait_for_url(f"**{booking_path(booking)}")
    assert "Your reservation was cancelled" in page.locator(".messages").inner_text()
    shot(page, "cancelled")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def paid_booking(event, general) -> Booking:
    booking = hold(event, [(general, 2)], email="ada@example.com")
    payment_authorize(booking=booking, card=Card(number="4111111111111111", exp_month=12, exp_year=2099,
                                                 cvc="123", holder_name="Ada"))
    booking.refresh_from_db()  # the capture ran when the authorization committed (Celery eager)
    assert booking.status == Booking.Status.CONFIRMED
    return booking


@pytest.mark.parametrize(("viewport", "javascript"), [("desktop", True), ("desktop", False), ("phone", True),
                                                      ("phone", False)])
def test_the_ticket_page_prints_with_buyer_reference_and_place_and_shows_the_qr_first_on_a_phone(
        site, open_page, festival, viewport, javascript):
    event, general, kids, table = festival
    booking = paid_booking(event, general)
    second = list(booking.tickets.all())[1]
    page, shot = open_page(viewport, javascript=javascript)

    page.goto(site.url + booking_path(booking, f"tickets/{second.pk}/"))

    assert page.locator(".ticket-position").text_content() == "2 of 2"  # shown in capitals
    assert page.locator(".buyer-name").inner_text() == "ada@example.com"
    assert page.locator(".booking-reference").inner_text() == booking.reference
    assert page.get_by_role("button", name="Print ticket").is_visible() is javascript  # only what works
    qr_top = page.locator("svg.qr").bounding_box()["y"]
    facts_top = page.locator(".ticket-page .facts").bounding_box()["y"]
    heading_top = page.get_by_role("heading", name="Harbour Festival").bounding_box()["y"]
    if viewport == "phone":
        assert qr_top < heading_top < facts_top  # what the door scans comes first
    else:
        assert heading_top < facts_top < qr_top
    shot(page, "ticket")

    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.get_by_role("button", name="Print ticket").is_visible()
    for part in (".ticket-position", ".buyer-name", ".booking-reference", "svg.qr"):
        assert page.locator(part).is_visible(), part
    shot(page, "print")
