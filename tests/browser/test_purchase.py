"""End to end in a real browser: browse, reserve, pay, get tickets; a declined card; an expired hold.

Celery runs eagerly (root conftest), and the live server commits for real, so
the capture queued after commit runs inside the pay request: the page the
browser is redirected to already shows the confirmed booking.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.services import LineItem, booking_reserve
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GOOD_CARD = "4111111111111111"
DECLINED_CARD = "4000000000000002"


@pytest.fixture
def jazz():
    """A published event with two ticket types, and a second event so the list is a list."""
    event = EventFactory(
        name="Summer Jazz Night", slug="summer-jazz-night", venue="Blue Note", city="Berlin",
        category=Event.Category.MUSIC, timezone="Europe/Berlin", currency="EUR",
        starts_at=timezone.now() + timedelta(days=30),
        description="Three bands on two stages, from swing to modern jazz.",
    )
    general = TicketTypeFactory(event=event, name="General admission", price=Decimal("35.00"), capacity=200,
                                max_per_booking=6, position=0)
    TicketTypeFactory(event=event, name="VIP lounge", price=Decimal("120.00"), capacity=4, position=1,
                      description="Seat in the lounge, one drink included")
    other = EventFactory(name="Hamlet", slug="hamlet", venue="Globe Theatre", city="London",
                         category=Event.Category.THEATRE, timezone="Europe/London", currency="GBP",
                         starts_at=timezone.now() + timedelta(days=45))
    TicketTypeFactory(event=other, name="Stalls", price=Decimal("45.00"), capacity=300)
    return event, general


def reserve_on_event_page(page, shot, event, general, *, quantity: int, email: str = "guest@example.com"):
    page.get_by_label('Number of “General admission” tickets').fill(str(quantity))
    page.get_by_label("E-mail address").fill(email)
    shot(page, "tickets-chosen")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/\?token="))
    return Booking.objects.get(email=email)


def fill_card(page, number: str):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry date (MM/YY)").fill("12/99")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Name on card").fill("Ada Lovelace")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_buy_two_tickets_and_get_their_qr_codes(site, open_page, jazz, viewport):
    event, general = jazz
    page, shot = open_page(viewport)

    page.goto(site.url + "/")
    assert page.title() == "Upcoming events · Ticketing"
    card = page.locator(".card", has_text="Summer Jazz Night")
    assert "Blue Note, Berlin" in card.inner_text()
    assert "€35.00 – €120.00" in card.inner_text()
    assert card.locator(".badge").inner_text() == "On sale"
    shot(page, "home")

    page.get_by_role("link", name="Summer Jazz Night").click()
    page.wait_for_url(f"**{event.get_absolute_url()}")
    assert page.title() == "Summer Jazz Night · Ticketing"
    assert page.get_by_label("Number of “VIP lounge” tickets").get_attribute("max") == "4"
    assert page.get_by_label('Number of “General admission” tickets').get_attribute("max") == "6"
    shot(page, "event")

    booking = reserve_on_event_page(page, shot, event, general, quantity=2)
    assert booking.status == Booking.Status.RESERVED
    assert page.get_by_text("Your tickets are held until").is_visible()
    assert re.fullmatch(r"1[45]:\d\d left to pay\.", page.locator(".countdown").inner_text())
    assert "€70.00" in page.locator("table.items tfoot").inner_text()
    shot(page, "booking-reserved")

    fill_card(page, GOOD_CARD)
    shot(page, "card-filled")
    page.get_by_role("button", name="Pay €70.00").click()
    page.wait_for_load_state()

    assert page.locator(".status strong").inner_text() == "Confirmed"
    assert page.locator("svg.qr").count() == 2
    assert page.get_by_text("Paid €70.00 with Visa ending in 1111.").is_visible()
    shot(page, "confirmed")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert booking.tickets.filter(status=Ticket.Status.ISSUED).count() == 2

    page.get_by_role("link", name=re.compile("Open “General admission” ticket 1")).click()
    page.wait_for_url(re.compile(r"/tickets/[0-9a-f-]{36}/\?token="))
    assert page.title() == "General admission ticket – Summer Jazz Night · Ticketing"
    assert page.locator("svg.qr").count() == 1
    ticket_code = page.locator(".ticket-code").inner_text()
    assert booking.tickets.filter(code=ticket_code).exists()
    assert page.get_by_role("button", name="Print ticket").is_visible()
    shot(page, "ticket")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    shot(page, "ticket-print")


def test_a_declined_card_shows_the_error_and_keeps_the_hold(site, open_page, jazz):
    event, general = jazz
    page, shot = open_page("desktop")
    page.goto(site.url + event.get_absolute_url())
    booking = reserve_on_event_page(page, shot, event, general, quantity=1)

    fill_card(page, DECLINED_CARD)
    page.get_by_role("button", name="Pay €35.00").click()
    page.wait_for_load_state()

    alert = page.locator(".form-errors")
    assert "Your card was declined." in alert.inner_text()
    assert page.locator(".status strong").inner_text() == "Reserved"
    assert page.get_by_label("Card number").input_value() == ""  # never written back
    assert page.get_by_label("Name on card").input_value() == "Ada Lovelace"
    shot(page, "declined")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED
    general.refresh_from_db()
    assert general.held == 1

    fill_card(page, GOOD_CARD)  # the hold is still there: another card works
    page.get_by_role("button", name="Pay €35.00").click()
    page.wait_for_load_state()
    assert page.locator(".status strong").inner_text() == "Confirmed"
    shot(page, "paid-with-another-card")


def test_an_expired_hold_shows_its_message(site, open_page, jazz):
    event, general = jazz
    page, shot = open_page("desktop")
    page.goto(site.url + event.get_absolute_url())
    booking = reserve_on_event_page(page, shot, event, general, quantity=2)
    fill_card(page, GOOD_CARD)

    # The live server runs in this process: moving the clock moves its clock.
    with time_machine.travel(booking.expires_at + timedelta(minutes=1), tick=True):
        page.get_by_role("button", name="Pay €70.00").click()
        page.wait_for_load_state()
        assert page.locator(".message-error").inner_text() == (
            "Your reservation has expired; the tickets were released.")
        assert page.get_by_role("link", name="Choose tickets again").is_visible()
        assert page.get_by_label("Card number").count() == 0
        shot(page, "hold-expired")

        page.get_by_role("link", name="Choose tickets again").click()
        page.wait_for_url(f"**{event.get_absolute_url()}")
        shot(page, "back-to-event")
    booking.refresh_from_db()
    assert booking.status in (Booking.Status.RESERVED, Booking.Status.EXPIRED)  # swept later, or reclaimed
    assert not booking.payments.exists()


def test_sold_out_shows_what_is_left(site, open_page, jazz):
    event, general = jazz
    vip = event.ticket_types.get(name="VIP lounge")
    page, shot = open_page("desktop")
    page.goto(site.url + event.get_absolute_url())
    page.get_by_label("Number of “VIP lounge” tickets").fill("3")
    page.get_by_label("E-mail address").fill("late@example.com")
    booking_reserve(event=event, items=[LineItem(vip, 2)], email="fast@example.com")  # someone was quicker

    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_load_state()

    errors = page.locator(".form-errors").inner_text()
    assert "Only 2 'VIP lounge' tickets left." in errors
    assert "VIP lounge: 2 tickets left" in errors
    assert page.get_by_label("Number of “VIP lounge” tickets").input_value() == "3"
    shot(page, "sold-out")


def test_live_availability_refreshes_and_keeps_what_was_typed(site, open_page, jazz):
    event, general = jazz
    vip = event.ticket_types.get(name="VIP lounge")
    page, shot = open_page("desktop")
    page.goto(site.url + event.get_absolute_url())
    assert page.evaluate("typeof htmx") == "object"
    vip_input = page.get_by_label("Number of “VIP lounge” tickets")
    vip_input.fill("1")
    assert page.locator(f"#avail-{vip.pk}").inner_text() == "Only 4 left"

    booking_reserve(event=event, items=[LineItem(vip, 3)], email="other@example.com")
    with page.expect_response(lambda r: "/availability/" in r.url, timeout=12_000) as polled:
        pass
    assert polled.value.status == 200
    page.wait_for_function(f"document.querySelector('#avail-{vip.pk}').innerText.trim() === 'Only 1 left'",
                           timeout=12_000)

    assert vip_input.input_value() == "1"
    assert vip_input.get_attribute("max") == "1"
    shot(page, "availability-refreshed")


def test_the_purchase_works_without_javascript(site, open_page, jazz):
    event, general = jazz
    page, shot = open_page("desktop", javascript=False)
    page.goto(site.url + "/")
    page.get_by_role("link", name="Summer Jazz Night").click()
    booking = reserve_on_event_page(page, shot, event, general, quantity=1, email="nojs@example.com")
    assert page.get_by_text("Your tickets are held until").is_visible()
    assert not page.locator(".countdown").is_visible()  # the enhancement stays hidden
    fill_card(page, GOOD_CARD)
    page.get_by_role("button", name="Pay €35.00").click()
    page.wait_for_load_state()
    assert page.locator(".status strong").inner_text() == "Confirmed"
    assert page.locator("svg.qr").count() == 1
    shot(page, "confirmed")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_new_buyer_signs_up_cancels_a_hold_then_buys_and_gets_a_refund(site, open_page, jazz, viewport):
    event, general = jazz
    page, shot = open_page(viewport)
    page.goto(site.url + "/accounts/signup/")
    page.get_by_label("Username").fill(f"mia-{viewport}")
    page.get_by_label("E-mail address").fill(f"mia-{viewport}@example.com")
    page.get_by_label(re.compile(r"^Password:?$")).fill("a-long-Passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-Passphrase-42")
    shot(page, "signup")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()

    page.goto(site.url + event.get_absolute_url())
    assert page.get_by_label("E-mail address").count() == 0  # the account's address is used
    page.get_by_label('Number of “General admission” tickets').fill("1")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/"))
    page.get_by_role("link", name="Cancel reservation").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/cancel/"))
    assert page.get_by_role("heading", name="Cancel this reservation?").is_visible()
    page.get_by_role("button", name="Yes, cancel").click()
    page.wait_for_load_state()
    assert "Your reservation was cancelled and the tickets were released." in page.locator(".messages").inner_text()
    shot(page, "cancelled")
    general.refresh_from_db()
    assert general.held == 0

    page.goto(site.url + event.get_absolute_url())
    page.get_by_label('Number of “General admission” tickets').fill("2")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/"))
    fill_card(page, GOOD_CARD)
    page.get_by_role("button", name="Pay €70.00").click()
    page.wait_for_load_state()
    assert page.locator(".status strong").inner_text() == "Confirmed"

    page.goto(site.url + "/bookings/")
    assert page.title() == "My bookings · Ticketing"
    rows = page.locator("main").inner_text()
    assert "Confirmed" in rows and "Cancelled" in rows
    shot(page, "my-bookings")
    page.get_by_role("link", name="Summer Jazz Night").first.click()
    page.wait_for_load_state()
    page.get_by_text("Request a refund").click()
    page.get_by_role("button", name="Refund my tickets").click()
    page.wait_for_load_state()
    assert "Your refund has been requested" in page.locator(".messages").inner_text()
    assert page.locator(".status strong").inner_text() == "Refunded"
    assert "€70.00 · Succeeded" in page.locator(".refunds").inner_text()
    shot(page, "refunded")
    general.refresh_from_db()
    assert (general.sold, general.held) == (0, 0)
    paid = Booking.objects.get(buyer__username=f"mia-{viewport}", status=Booking.Status.REFUNDED)
    assert paid.tickets.filter(status=Ticket.Status.REFUNDED).count() == 2
