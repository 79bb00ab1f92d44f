"""The booking page (pay, cancel, refund), ticket pages and "My bookings" (Django test client)."""

import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from core.errors import Busy
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from events.tests.pages import page, title
from payments.gateway import Declined
from payments.models import Payment, Refund
from payments.services import payment_capture
from payments.views import BookingPayView

pytestmark = pytest.mark.django_db

CARD = {"card_number": "4111 1111 1111 1111", "expiry": "12/99", "cvc": "123",
        "cardholder_name": "Ada Lovelace"}


def guest_booking(*, quantity=2, status=Booking.Status.RESERVED, **type_fields):
    tt = TicketTypeFactory(**{"name": "General", "price": Decimal("25.00"), **type_fields})
    return make_booking(items=[(tt, quantity)], status=status, email="guest@example.com")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a request queued after commit (the capture and refund tasks, eager) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def url(booking, name="bookings:detail", token=True, **kwargs):
    path = reverse(name, kwargs={"pk": booking.pk, **kwargs})
    return f"{path}?token={booking.access_token}" if token else path


# --- Visibility -------------------------------------------------------------------------------


def test_a_guest_sees_the_booking_with_its_token_only(client):
    booking = guest_booking()
    assert client.get(url(booking)).status_code == 200
    assert client.get(url(booking, token=False)).status_code == 404
    assert client.get(f"{url(booking, token=False)}?token=wrong").status_code == 404


def test_the_owner_and_the_organizer_see_it_others_do_not(client):
    owner, member, stranger = UserFactory(), UserFactory(), UserFactory()
    tt = TicketTypeFactory(event__organizer__members=[member])
    booking = make_booking(items=[(tt, 1)], buyer=owner, email=owner.email)
    for user, status in ((owner, 200), (member, 200), (stranger, 404)):
        client.force_login(user)
        assert client.get(url(booking, token=False)).status_code == status


def test_a_404_uses_the_site_page(client):
    response = client.get("/bookings/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    html = response.content.decode()
    assert title(html) == "Page not found · Ticketing"
    assert "/static/css/site.css" in html


# --- A reserved booking -----------------------------------------------------------------------


def test_a_reserved_booking_shows_items_total_hold_and_the_card_form(client):
    tt = TicketTypeFactory(name="General", price=Decimal("25.00"), event__timezone="Asia/Tokyo",
                           event__currency="EUR")
    vip = TicketTypeFactory(event=tt.event, name="VIP", price=Decimal("100.00"))
    booking = make_booking(items=[(tt, 2), (vip, 1)], email="guest@example.com")

    html = page(client.get(url(booking)))

    assert title(html) == f"Your booking for {tt.event.name} · Ticketing"
    assert "Reserved" in html
    assert re.search(r"General</th><td[^>]*>2</td><td[^>]*>€25.00</td><td[^>]*>€50.00", html)
    assert "€150.00" in html
    held_until = booking.expires_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    assert f"Your tickets are held until {held_until} JST." in html
    assert re.search(r'data-countdown="(8\d\d|900)"', html)
    for name in ("card_number", "expiry", "cvc", "cardholder_name"):
        assert f'name="{name}"' in html
    assert 'autocomplete="cc-number"' in html and 'autocomplete="cc-exp"' in html
    assert "Pay €150.00" in html
    assert "Cancel reservation" in html


def test_forms_and_links_keep_the_guest_token(client):
    booking = guest_booking()
    html = page(client.get(url(booking)))
    assert f'action="{url(booking, "bookings:pay")}"' in html
    assert f'href="{url(booking, "bookings:cancel")}"' in html  # the confirmation page
    confirm = page(client.get(url(booking, "bookings:cancel")))
    assert f'action="{url(booking, "bookings:cancel")}"' in confirm
    assert f'href="{url(booking)}"' in confirm


def test_paying_confirms_the_booking_and_shows_its_tickets(client, committed):
    booking = guest_booking(quantity=2)

    with committed():
        response = client.post(url(booking, "bookings:pay"), CARD)

    assert response.status_code == 302
    assert response["Location"] == url(booking)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED  # Celery eager: the capture ran on commit
    payment = Payment.objects.get()
    assert (payment.status, payment.card_brand, payment.card_last4) == ("captured", "visa", "1111")

    html = page(client.get(url(booking)))
    assert "Confirmed" in html
    assert html.count("<svg") == 2
    assert "Paid €50.00 with Visa ending in 1111." in html
    for ticket in booking.tickets.all():
        assert ticket.code in html
        assert url(booking, "bookings:ticket", ticket_pk=ticket.pk) in html
    assert "Request a refund" in html
    assert 'name="card_number"' not in html


def test_a_logged_in_buyer_pays_without_a_token(client, committed):
    user = UserFactory()
    tt = TicketTypeFactory()
    booking = make_booking(items=[(tt, 1)], buyer=user, email=user.email)
    client.force_login(user)
    with committed():
        response = client.post(url(booking, "bookings:pay", token=False), CARD)
    assert response["Location"] == url(booking, token=False)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_a_declined_card_is_shown_on_the_form_after_a_redirect_and_the_hold_stays(client):
    booking = guest_booking()

    response = client.post(url(booking, "bookings:pay"), {**CARD, "card_number": "4000000000000002"})

    assert response.status_code == 302 and response["Location"] == url(booking)  # Post/Redirect/Get
    html = page(client.get(response["Location"]))
    assert "Your card was declined." in html
    assert 'role="alert"' in html
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED
    assert booking.tickets.filter(status=Ticket.Status.HELD).count() == 2
    assert "4000000000000002" not in html  # the card number is never written back
    assert 'value="Ada Lovelace"' in html
    refreshed = page(client.get(url(booking)))  # reloading the page sends nothing and says it once
    assert "Your card was declined." not in refreshed
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("card_number", "4111111111111112", "Enter a valid card number."),
        ("expiry", "12/01", "This card has expired."),  # the gateway's check, on the one expiry field
        ("expiry", "13/29", "Enter a month from 1 to 12."),
        ("expiry", "December", "Enter the expiry date as MM/YY, e.g. 08/29."),
        ("cvc", "12", "Enter the 3 or 4 digits on the back of the card."),
    ],
)
def test_an_invalid_card_shows_the_error_at_its_field(client, field, value, message):
    booking = guest_booking()

    html = page(client.post(url(booking, "bookings:pay"), {**CARD, field: value}, follow=True))

    assert f'<ul class="errorlist" id="id_{field}_error"><li>{message}</li></ul>' in html
    widget = re.search(rf'<input[^>]*id="id_{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in widget and f"id_{field}_error" in widget
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED
    assert not Payment.objects.exclude(status=Payment.Status.FAILED).exists()


def test_missing_card_fields_are_required(client):
    booking = guest_booking()
    html = page(client.post(url(booking, "bookings:pay"), {}, follow=True))
    assert html.count("This field is required.") == 4
    assert not Payment.objects.exists()


@pytest.mark.parametrize("expiry", ["12/99", "12/2099", " 12 / 99 ", "1299", "12-2099"])
def test_one_expiry_field_takes_mm_yy_or_mm_yyyy(client, expiry):
    booking = guest_booking()
    assert client.post(url(booking, "bookings:pay"), {**CARD, "expiry": expiry}).status_code == 302
    assert Payment.objects.get().status == Payment.Status.AUTHORIZED


@pytest.mark.parametrize("number", ["4111111111111111", "4111 1111 1111 1111"])
def test_the_card_number_is_taken_with_or_without_spaces(client, number):
    booking = guest_booking()
    assert client.post(url(booking, "bookings:pay"), {**CARD, "card_number": number}).status_code == 302
    payment = Payment.objects.get()
    assert (payment.status, payment.card_last4) == (Payment.Status.AUTHORIZED, "1111")


def test_paying_an_expired_hold_says_so_and_releases_nothing_twice(client):
    booking = guest_booking()
    with time_machine.travel(booking.expires_at + timedelta(seconds=1)):
        response = client.post(url(booking, "bookings:pay"), CARD, follow=True)
    html = page(response)
    assert 'role="alert">Your reservation has expired; the tickets were released.</p>' in html
    assert "Choose tickets again" in html
    assert 'name="card_number"' not in html
    assert not Payment.objects.exists()


def test_an_expired_hold_shows_its_message(client):
    booking = guest_booking()
    with time_machine.travel(booking.expires_at + timedelta(minutes=1)):
        html = page(client.get(url(booking)))
    assert "<strong>Expired</strong>" in html
    assert "Hold expired" in html and "Nothing was charged." in html
    assert "Cancel reservation" not in html and 'name="card_number"' not in html


def test_paying_twice_is_refused_with_a_message(client):  # the first payment is still processing
    booking = guest_booking()
    client.post(url(booking, "bookings:pay"), CARD)
    html = page(client.post(url(booking, "bookings:pay"), CARD, follow=True))
    assert "This booking is not awaiting payment." in html
    assert Payment.objects.count() == 1


def test_busy_while_paying_shows_the_very_busy_page(client):
    booking = guest_booking()
    with mock.patch("payments.views.payment_authorize", side_effect=Busy()):
        response = client.post(url(booking, "bookings:pay"), CARD)
    assert response.status_code == 503
    assert "We are very busy right now" in response.content.decode()


def test_the_pay_view_hides_the_card_in_error_reports(rf):
    request = rf.post("/", CARD)
    request.user = AnonymousUser()  # as AuthenticationMiddleware sets it (the pay throttle reads it)
    with mock.patch("payments.views.booking_access_for_request", side_effect=RuntimeError), pytest.raises(RuntimeError):
        BookingPayView.as_view()(request, pk=None)
    assert set(request.sensitive_post_parameters) >= {"card_number", "cvc"}


def test_a_processing_booking_refreshes_itself(client):
    booking = guest_booking(status=Booking.Status.PROCESSING)
    html = page(client.get(url(booking)))
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "Processing your payment" in html
    assert 'name="card_number"' not in html


def test_a_failed_capture_shows_a_cancelled_booking(client):
    booking = guest_booking()
    with mock.patch("payments.services.authorize._on_commit_delay"):  # leave the capture for later
        client.post(url(booking, "bookings:pay"), CARD)

    with mock.patch("payments.mock_gateway.MockGateway.capture", side_effect=Declined("refused", "Refused")):
        payment_capture(payment_id=Payment.objects.get().pk)

    html = page(client.get(url(booking)))
    assert "Cancelled" in html
    assert "nothing was charged" in html
    assert '<meta http-equiv="refresh"' not in html


# --- Cancel -----------------------------------------------------------------------------------


def test_cancel_releases_the_hold(client):
    booking = guest_booking()

    response = client.post(url(booking, "bookings:cancel"), follow=True)

    html = page(response)
    assert response.redirect_chain[-1][0] == url(booking)
    assert "Your reservation was cancelled and the tickets were released." in html
    assert "This reservation was cancelled." in html
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.tickets.first().ticket_type.held == 0


def test_cancel_of_a_paid_booking_is_refused_with_a_message(client):
    booking = guest_booking(status=Booking.Status.CONFIRMED)
    html = page(client.post(url(booking, "bookings:cancel"), follow=True))
    assert "Only a reservation that is not yet paid can be cancelled." in html
    assert 'class="message message-error"' in html


def test_cancel_asks_first_and_the_post_cancels(client):
    booking = guest_booking()

    html = page(client.get(url(booking, "bookings:cancel")))

    assert title(html) == "Cancel this reservation? · Ticketing"
    assert "Yes, cancel" in html and "Keep it" in html
    assert "2 × General" in html and "€50.00" in html
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED  # asking changes nothing
    assert client.post(url(booking, "bookings:cancel")).status_code == 302
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_the_cancel_confirmation_of_a_booking_not_on_hold_goes_back_to_the_booking(client):
    booking = guest_booking(status=Booking.Status.CONFIRMED)
    response = client.get(url(booking, "bookings:cancel"))
    assert (response.status_code, response["Location"]) == (302, url(booking))
    held = guest_booking()
    with time_machine.travel(held.expires_at + timedelta(seconds=1)):  # the hold ran out
        assert client.get(url(held, "bookings:cancel"))["Location"] == url(held)


def test_cancel_needs_the_token(client):
    booking = guest_booking()
    assert client.get(url(booking, "bookings:cancel", token=False)).status_code == 404
    assert client.post(url(booking, "bookings:cancel", token=False)).status_code == 404


# --- Refund -----------------------------------------------------------------------------------


def pay(client, booking, committed):
    with committed():
        client.post(url(booking, "bookings:pay"), CARD)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_a_buyer_refunds_a_confirmed_booking(client, committed):
    booking = guest_booking()
    pay(client, booking, committed)

    with committed():
        response = client.post(url(booking, "bookings:refund"))
    html = page(client.get(response["Location"]))

    assert "Your refund has been requested" in html
    booking.refresh_from_db()
    assert booking.status == Booking.Status.REFUNDED  # the refund task ran eagerly
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert "<strong>Refunded</strong>" in html
    assert "<svg" not in html  # refunded tickets have no QR code


def test_a_refund_after_the_window_closed_shows_the_message(client, settings, committed):
    settings.REFUND_CUTOFF_HOURS = 24 * 365
    booking = guest_booking()
    pay(client, booking, committed)

    html = page(client.post(url(booking, "bookings:refund"), follow=True))

    assert "Refunds can no longer be requested for this event; contact the organizer." in html
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert not Refund.objects.exists()


def test_refunding_an_unpaid_booking_is_refused(client):
    booking = guest_booking()
    html = page(client.post(url(booking, "bookings:refund"), follow=True))
    assert "Only a confirmed booking can be refunded." in html


# --- Ticket page -------------------------------------------------------------------------------


def test_the_ticket_page_shows_event_type_code_and_qr_code(client, committed):
    tt = TicketTypeFactory(name="Balcony", event__name="Hamlet", event__venue="Globe", event__city="London",
                           event__timezone="Europe/London")
    booking = make_booking(items=[(tt, 1)], email="g@example.com")
    pay(client, booking, committed)
    ticket = booking.tickets.get()

    html = page(client.get(url(booking, "bookings:ticket", ticket_pk=ticket.pk)))

    assert title(html) == "Balcony ticket – Hamlet · Ticketing"
    assert "Globe, London" in html
    assert tt.event.starts_at.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M %Z") in html
    assert ticket.code in html
    assert re.search(r'<svg viewBox="0 0 \d+ \d+" class="qr"><title>QR code of ticket', html)
    assert "Print ticket" in html
    assert f'href="{url(booking)}"' in html  # back link keeps the token


def test_the_ticket_page_names_the_buyer_the_booking_and_the_tickets_place_in_it(client, committed):
    buyer = UserFactory(first_name="Ada", last_name="Lovelace")
    tt = TicketTypeFactory(name="Stalls")
    booking = make_booking(items=[(tt, 2)], buyer=buyer, email=buyer.email)
    client.force_login(buyer)
    with committed():
        client.post(url(booking, "bookings:pay", token=False), CARD)
    first, second = booking.tickets.all()

    html = page(client.get(url(booking, "bookings:ticket", token=False, ticket_pk=second.pk)))

    assert '<dd class="buyer-name">Ada Lovelace</dd>' in html
    assert f'<code class="booking-reference">{booking.reference}</code>' in html
    assert '<span class="ticket-position">2 of 2</span>' in html
    assert '<div class="ticket-qr">' in html  # first on a phone (site.css)
    assert "1 of 2" in page(client.get(url(booking, "bookings:ticket", token=False, ticket_pk=first.pk)))


def test_a_guests_ticket_names_the_guest_by_e_mail_address(client):
    booking = guest_booking(quantity=1)
    html = page(client.get(url(booking, "bookings:ticket", ticket_pk=booking.tickets.get().pk)))
    assert '<dd class="buyer-name">guest@example.com</dd>' in html
    assert '<span class="ticket-position">1 of 1</span>' in html


def test_the_booking_page_shows_the_booking_reference(client):
    booking = guest_booking()
    assert f"<code>{booking.reference}</code>" in page(client.get(url(booking)))


def test_a_ticket_not_yet_paid_has_no_qr_code(client):
    booking = guest_booking(quantity=1)
    ticket = booking.tickets.get()
    html = page(client.get(url(booking, "bookings:ticket", ticket_pk=ticket.pk)))
    assert "This ticket becomes valid once the booking is paid." in html
    assert "<svg" not in html


def test_a_ticket_of_another_booking_is_not_found(client):
    booking, other = guest_booking(quantity=1), guest_booking(quantity=1)
    ticket = other.tickets.get()
    assert client.get(url(booking, "bookings:ticket", ticket_pk=ticket.pk)).status_code == 404
    assert client.get(url(other, "bookings:ticket", token=False, ticket_pk=ticket.pk)).status_code == 404


# --- My bookings -------------------------------------------------------------------------------


def test_my_bookings_needs_a_login(client):
    response = client.get(reverse("bookings:mine"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/bookings/"


def test_my_bookings_lists_the_users_bookings_with_statuses_and_pages(client, settings):
    """Upcoming first (soonest event first), then past (paginated, latest first); each row with its reference,
    ticket count, the event's date in its zone, status and total (issue 17 item 10)."""
    settings.BOOKING_MAX_HOLDS_PER_BUYER = settings.BOOKING_MAX_TICKETS_PER_BUYER = 0  # one buyer, many holds
    user = UserFactory()
    event = EventFactory(name="Festival", currency="USD", timezone="America/New_York")
    tt = TicketTypeFactory(event=event, price=Decimal("10.00"))
    for _ in range(11):
        make_booking(items=[(tt, 1)], buyer=user, email=user.email)
    confirmed = make_booking(items=[(tt, 2)], buyer=user, email=user.email, status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 1)], email="someone@example.com")
    coming = TicketTypeFactory(event=EventFactory(name="Opera", starts_at=event.starts_at + timedelta(days=30)),
                               price=Decimal("58.00"))
    upcoming = make_booking(items=[(coming, 3)], buyer=user, email=user.email, status=Booking.Status.CONFIRMED)
    client.force_login(user)

    with time_machine.travel(event.ends_at + timedelta(hours=1)):  # the festival is over, the opera to come
        first = page(client.get(reverse("bookings:mine")))
        second = page(client.get(reverse("bookings:mine"), {"page": 2}))
        assert client.get(reverse("bookings:mine"), {"page": 3}).status_code == 404

    assert title(first) == "My bookings · Ticketing"
    upcoming_part, past_part = first.split('id="past-heading"')
    assert '<h2 id="upcoming-heading">Upcoming</h2>' in upcoming_part
    assert upcoming_part.count("<tr>") - 1 == 1 and past_part.count("<tr>") - 1 == 10
    assert second.count("<tr>") - 1 == 2 and "Upcoming" not in second  # page 2 is past bookings only
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert upcoming.get_absolute_url() in upcoming_part
    assert f"<code>{upcoming.reference}</code>" in upcoming_part and "€174.00" in upcoming_part
    assert re.search(r'data-label="Tickets" class="num">3<', upcoming_part)
    assert confirmed.get_absolute_url() in past_part  # newest first among the festival's
    assert f"<code>{confirmed.reference}</code>" in past_part
    assert re.search(r'data-label="Tickets" class="num">2<', past_part)
    assert event.starts_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %Z") in past_part
    assert "Confirmed" in past_part and "Reserved" in past_part
    assert "$20.00" in past_part
    assert 'aria-current="page">My bookings' in first


def test_my_bookings_says_when_one_part_is_empty(client):
    user = UserFactory()
    make_booking(items=[(TicketTypeFactory(), 1)], buyer=user, email=user.email)
    client.force_login(user)

    html = page(client.get(reverse("bookings:mine")))

    assert "No past bookings." in html and "No upcoming bookings." not in html


def test_my_bookings_when_there_are_none(client):
    client.force_login(UserFactory())
    assert "You have no bookings yet." in page(client.get(reverse("bookings:mine")))


# --- Access token and guest links (issue 15 items 9 and 11) ---------------------------------------


def view_only_member(organizer):
    from django.contrib.auth.models import Permission

    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_",
                                                         content_type__app_label__in=["events", "bookings"]))
    organizer.members.add(user)
    return user


def test_the_organizer_sees_a_guests_booking_page_without_its_token(client):
    member = UserFactory()
    tt = TicketTypeFactory(event__organizer__members=[member])
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    client.force_login(member)

    html = page(client.get(url(booking, token=False)))

    assert "guest@example.com" in html
    assert booking.access_token not in html


def test_a_view_only_member_can_neither_cancel_nor_refund_a_buyers_booking_on_the_site(client):
    tt = TicketTypeFactory()
    viewer = view_only_member(tt.event.organizer)
    hold = make_booking(items=[(tt, 1)], email="guest@example.com")
    client.force_login(viewer)

    html = page(client.get(url(hold, token=False)))
    cancel = client.post(url(hold, "bookings:cancel", token=False))
    confirm = client.get(url(hold, "bookings:cancel", token=False))
    refund = client.post(url(hold, "bookings:refund", token=False))

    assert "Cancel reservation" not in html
    assert (cancel.status_code, confirm.status_code, refund.status_code) == (403, 403, 403)
    hold.refresh_from_db()
    assert hold.status == Booking.Status.RESERVED


def test_the_guest_link_expires_some_days_after_the_event_ended(client, settings, committed):
    settings.GUEST_LINK_VALID_DAYS_AFTER_EVENT = 30
    booking = guest_booking()
    pay(client, booking, committed)
    ticket = booking.tickets.first()
    ended = booking.event.ends_at

    with time_machine.travel(ended + timedelta(days=29), tick=False):
        assert client.get(url(booking)).status_code == 200
    with time_machine.travel(ended + timedelta(days=31), tick=False):
        response = client.get(url(booking))
        ticket_page = client.get(url(booking, "bookings:ticket", ticket_pk=ticket.pk))
        refund = client.post(url(booking, "bookings:refund"))
        wrong = client.get(f"{url(booking, token=False)}?token=wrong")

    assert response.status_code == 410
    html = response.content.decode()
    assert "This link has expired" in html
    assert ticket.code not in html and "guest@example.com" not in html  # nothing of the booking
    assert title(html) == "Link expired · Ticketing"
    assert ticket_page.status_code == 410 and ticket.code not in ticket_page.content.decode()
    assert refund.status_code == 410
    assert wrong.status_code == 404
    assert not Refund.objects.exists()


def test_the_buyer_keeps_the_booking_page_after_the_guest_link_expired(client):
    buyer = UserFactory()
    tt = TicketTypeFactory()
    booking = make_booking(items=[(tt, 1)], buyer=buyer, email=buyer.email)

    with time_machine.travel(booking.event.ends_at + timedelta(days=400), tick=False):
        client.force_login(buyer)
        assert client.get(url(booking, token=False)).status_code == 200
        assert client.get(url(booking)).status_code == 200
