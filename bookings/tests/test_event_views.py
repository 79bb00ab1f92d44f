"""The catalogue pages and the reservation form (Django test client)."""

import re
from datetime import datetime, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Booking
from bookings.tests.factories import make_booking
from core.errors import Busy
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from events.tests.pages import page, title

pytestmark = pytest.mark.django_db


# --- Event list ------------------------------------------------------------------------


def test_home_lists_published_events_with_a_badge(client):
    tt = TicketTypeFactory(event__name="Jazz Night", capacity=5)
    EventFactory(name="Secret draft", status=Event.Status.DRAFT)

    response = client.get(reverse("events:list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Jazz Night" in html and "Secret draft" not in html
    assert "Few left" in html
    assert tt.event.get_absolute_url() in html


def test_home_hides_past_and_cancelled_events(client):
    EventFactory(name="Last year", starts_at=timezone.now() - timedelta(days=365))
    EventFactory(name="Called off", status=Event.Status.CANCELLED)
    TicketTypeFactory(event__name="Next week")

    html = page(client.get("/"))

    assert "Next week" in html
    assert "Last year" not in html and "Called off" not in html
    assert title(html) == "Upcoming events · Ticketing"


def test_a_card_shows_date_in_the_event_time_zone_venue_and_price_range_in_its_currency(client):
    starts = datetime(2099, 7, 1, 18, 30, tzinfo=ZoneInfo("UTC"))  # 20:30 in Berlin (CEST)
    event = EventFactory(name="Opera", starts_at=starts, timezone="Europe/Berlin", venue="Staatsoper",
                         city="Berlin", currency="EUR")
    TicketTypeFactory(event=event, price=Decimal("25.00"))
    TicketTypeFactory(event=event, price=Decimal("1250.00"))
    EventFactory(name="Gig", starts_at=starts, timezone="America/New_York", currency="USD", city="New York")
    TicketTypeFactory(event=Event.objects.get(name="Gig"), price=Decimal("30"))

    html = page(client.get("/"))

    assert "Wed 1 Jul 2099, 20:30 CEST" in html
    assert "Wed 1 Jul 2099, 14:30 EDT" in html
    assert "Staatsoper, Berlin" in html
    assert "€25.00 – €1,250.00" in html
    assert "$30.00" in html


def test_badges_say_on_sale_few_left_and_sold_out(client):
    TicketTypeFactory(event__name="Big", capacity=500)
    TicketTypeFactory(event__name="Small", capacity=3)
    gone = TicketTypeFactory(event__name="Gone", capacity=2)
    make_booking(items=[(gone, 2)], status=Booking.Status.CONFIRMED)

    html = page(client.get("/"))

    def badge_of(name):
        card = html[html.index(f">{name}</a>"):]
        return re.search(r'class="badge [^"]+">([^<]+)<', card).group(1)

    assert badge_of("Big") == "On sale"
    assert badge_of("Small") == "Few left"
    assert badge_of("Gone") == "Sold out"


def test_the_event_cap_limits_the_badge(client):
    event = EventFactory(name="Capped", capacity=4)
    TicketTypeFactory(event=event, capacity=100)
    html = page(client.get("/"))
    assert "Few left" in html


def test_search_by_words_in_name_or_venue(client):
    TicketTypeFactory(event__name="Jazz Night", event__venue="Blue Note")
    TicketTypeFactory(event__name="Rock Show", event__venue="Arena")

    html = page(client.get("/", {"q": "blue"}))

    assert "Jazz Night" in html and "Rock Show" not in html
    assert title(html) == "Search results · Ticketing"
    assert 'value="blue"' in html  # the search box keeps the words
    assert "Clear filters" in html


def test_filters_by_city_and_category(client):
    TicketTypeFactory(event__name="Berlin Jazz", event__city="Berlin", event__category=Event.Category.MUSIC)
    TicketTypeFactory(event__name="Berlin Play", event__city="Berlin", event__category=Event.Category.THEATRE)
    TicketTypeFactory(event__name="Paris Jazz", event__city="Paris", event__category=Event.Category.MUSIC)

    html = page(client.get("/", {"city": "berlin", "category": "music"}))

    assert "Berlin Jazz" in html
    assert "Berlin Play" not in html and "Paris Jazz" not in html
    assert '<option value="Paris">' in html  # the city list offers every city


def test_filters_by_date_range_inclusive(client):
    now = timezone.now()
    TicketTypeFactory(event__name="Soon", event__starts_at=now + timedelta(days=2))
    TicketTypeFactory(event__name="Later", event__starts_at=now + timedelta(days=20))
    TicketTypeFactory(event__name="Much later", event__starts_at=now + timedelta(days=60))
    after = (now + timedelta(days=10)).date().isoformat()
    before = (now + timedelta(days=20)).date().isoformat()

    html = page(client.get("/", {"starts_after": after, "starts_before": before}))

    assert "Later" in html
    assert "Soon" not in html and "Much later" not in html


def test_an_invalid_filter_is_shown_and_ignored(client):
    TicketTypeFactory(event__name="Jazz Night")

    html = page(client.get("/", {"starts_after": "not-a-date", "category": "nope"}))

    assert "Jazz Night" in html
    assert "Enter a valid date." in html
    assert "Select a valid choice." in html


def test_a_reversed_date_range_is_an_error(client):
    html = page(client.get("/", {"starts_after": "2099-05-02", "starts_before": "2099-05-01"}))
    assert "The end date must not be before the start date." in html


def test_pagination_keeps_the_filters(client):
    start = timezone.now() + timedelta(days=1)
    for i in range(14):
        TicketTypeFactory(event__name=f"Show {i:02d}", event__city="Rome", event__starts_at=start + timedelta(hours=i))
    TicketTypeFactory(event__name="Elsewhere", event__city="Oslo")

    first = page(client.get("/", {"city": "Rome"}))
    assert "14 events" in first
    assert "Show 11" in first and "Show 12" not in first
    assert "Page 1 of 2" in first
    assert 'href="?city=Rome&amp;page=2"' in first

    second = page(client.get("/", {"city": "Rome", "page": 2}))
    assert "Show 12" in second and "Show 13" in second and "Show 00" not in second
    assert title(second) == "Search results – page 2 · Ticketing"
    assert client.get("/", {"page": 99}).status_code == 404


def test_no_events_says_so(client):
    assert "No upcoming events yet." in page(client.get("/"))
    assert "No events match your search." in page(client.get("/", {"q": "nothing"}))


# --- Event page ------------------------------------------------------------------------


def test_event_page_shows_ticket_types_and_availability(client):
    tt = TicketTypeFactory(name="Balcony", capacity=7)
    response = client.get(tt.event.get_absolute_url())
    assert response.status_code == 200
    assert "Balcony" in response.content.decode()


def test_a_draft_event_page_is_not_found(client):
    event = EventFactory(status=Event.Status.DRAFT)
    assert client.get(event.get_absolute_url()).status_code == 404


def test_an_organizer_member_previews_a_draft(client):
    user = UserFactory()
    event = EventFactory(status=Event.Status.DRAFT, organizer__members=[user])
    TicketTypeFactory(event=event)
    client.force_login(user)
    html = page(client.get(event.get_absolute_url()))
    assert "Draft: this event is not published yet." in html
    assert "Reserve tickets" not in html


def test_a_wrong_slug_redirects_to_the_event(client):
    event = EventFactory()
    response = client.get(reverse("events:detail", kwargs={"pk": event.pk, "slug": "old-name"}))
    assert response.status_code == 301
    assert response["Location"] == event.get_absolute_url()


def test_event_page_details_in_the_event_time_zone_with_prices_in_its_currency(client):
    event = EventFactory(name="Proms", starts_at=datetime(2099, 8, 1, 18, 0, tzinfo=ZoneInfo("UTC")),
                         timezone="Europe/London", currency="GBP", venue="Royal Albert Hall", city="London",
                         description="An evening\nof music.")
    event.ends_at = event.starts_at + timedelta(hours=2)
    event.save()
    TicketTypeFactory(event=event, name="Arena", price=Decimal("8.00"), description="Standing")

    html = page(client.get(event.get_absolute_url()))

    assert title(html) == "Proms · Ticketing"
    assert "Saturday 1 August 2099, 19:00" in html and "21:00 BST" in html
    assert "Royal Albert Hall, London" in html
    assert "£8.00" in html and "Standing" in html
    assert "An evening<br>of music." in html


def test_quantity_inputs_are_bounded_by_the_limit_and_what_is_left(client):
    event = EventFactory()
    roomy = TicketTypeFactory(event=event, name="Roomy", capacity=100, max_per_booking=6)
    scarce = TicketTypeFactory(event=event, name="Scarce", capacity=3, max_per_booking=10)
    gone = TicketTypeFactory(event=event, name="Gone", capacity=1)
    make_booking(items=[(gone, 1)])

    html = page(client.get(event.get_absolute_url()))

    assert re.search(rf'name="qty_{roomy.pk}" min="0" max="6"', html)
    assert re.search(rf'name="qty_{scarce.pk}" min="0" max="3"', html)
    gone_input = re.search(rf'<input[^>]*name="qty_{gone.pk}"[^>]*>', html).group(0)
    assert " disabled" in gone_input
    assert "Only 3 left" in html and "All reserved, check back soon" in html and "100 available" in html
    assert f'<label class="visually-hidden" for="qty-{roomy.pk}">' in html


def test_types_outside_their_sales_window_cannot_be_chosen(client):
    event = EventFactory()
    TicketTypeFactory(event=event, name="Early bird", sales_end=timezone.now() - timedelta(days=1))
    later = TicketTypeFactory(event=event, name="Late", sales_start=timezone.now() + timedelta(days=1))

    html = page(client.get(event.get_absolute_url()))

    assert "Sales closed" in html and "On sale from" in html
    assert re.search(rf'<input[^>]*name="qty_{later.pk}"[^>]*disabled', html)
    assert "No tickets can be reserved right now." in html


def test_a_cancelled_event_has_no_reservation_form(client):
    event = EventFactory(status=Event.Status.CANCELLED)
    TicketTypeFactory(event=event)
    html = page(client.get(event.get_absolute_url()))
    assert "This event has been cancelled." in html
    assert "Reserve tickets" not in html
    assert "hx-get" not in html


def test_event_page_polls_its_availability_with_htmx(client):
    tt = TicketTypeFactory()
    html = page(client.get(tt.event.get_absolute_url()))
    url = reverse("events:availability", kwargs={"pk": tt.event.pk})
    assert f'hx-get="{url}"' in html
    assert 'hx-trigger="every 5s"' in html
    assert "/static/js/htmx.min.js" in html and "/static/js/site.js" in html


def test_the_page_asks_a_guest_for_an_email_but_not_a_buyer_with_one(client):
    tt = TicketTypeFactory()
    assert 'name="email"' in page(client.get(tt.event.get_absolute_url()))

    client.force_login(UserFactory(email="ada@example.com"))
    html = page(client.get(tt.event.get_absolute_url()))
    assert 'name="email"' not in html
    assert "Your tickets will be sent to ada@example.com." in html


# --- Availability fragment --------------------------------------------------------------


def test_the_availability_fragment_renders_the_rows_and_keeps_typed_quantities(client):
    tt = TicketTypeFactory(name="Floor", capacity=8)
    url = reverse("events:availability", kwargs={"pk": tt.event.pk})

    html = page(client.get(url, {f"qty_{tt.pk}": "3"}))

    assert html.lstrip().startswith('<tbody id="ticket-rows"')
    assert "<html" not in html
    assert "Only 8 left" in html
    assert f'name="qty_{tt.pk}" min="0" max="8" value="3"' in html


def test_the_availability_fragment_ignores_quantities_that_are_not_small_numbers(client):
    tt = TicketTypeFactory()
    url = reverse("events:availability", kwargs={"pk": tt.event.pk})
    for junk in ("1e999999", "-3", "abc", "99999", "²", "٣", "3²"):  # digits int() refuses or reads otherwise
        html = page(client.get(url, {f"qty_{tt.pk}": junk}))
        assert f'name="qty_{tt.pk}" min="0" max="10" value="" placeholder="0"' in html


def test_the_availability_fragment_is_served_from_a_short_cache(client, django_assert_num_queries, settings):
    tt = TicketTypeFactory(capacity=8)
    url = reverse("events:availability", kwargs={"pk": tt.event.pk})
    page(client.get(url))
    TicketType.objects.filter(pk=tt.pk).update(capacity=50)

    with django_assert_num_queries(0):
        html = page(client.get(url))
    assert "Only 8 left" in html  # cached for AVAILABILITY_CACHE_SECONDS

    from django.core.cache import cache

    from events.availability import availability_cache_key

    cache.delete(availability_cache_key(tt.event.pk))  # what expiry does after 2 s
    assert "50 available" in page(client.get(url))
    assert settings.AVAILABILITY_CACHE_SECONDS == 2


def test_the_availability_fragment_of_a_draft_or_unknown_event_is_not_found(client):
    draft = EventFactory(status=Event.Status.DRAFT)
    assert client.get(reverse("events:availability", kwargs={"pk": draft.pk})).status_code == 404
    unknown = reverse("events:availability", kwargs={"pk": "00000000-0000-0000-0000-000000000000"})
    assert client.get(unknown).status_code == 404


# --- Reserving ---------------------------------------------------------------------------


def reserve(client, event, quantities, **extra):
    data = {f"qty_{tt.pk}": str(n) for tt, n in quantities.items()}
    data.update(extra)
    return client.post(reverse("bookings:reserve", kwargs={"event_pk": event.pk}), data)


def refused(client, event, quantities, **extra):
    """A refused reservation: redirected to the event page (Post/Redirect/Get), which says why."""
    response = reserve(client, event, quantities, **extra)
    assert response.status_code == 302
    assert response["Location"] == f"{event.get_absolute_url()}#tickets-heading"
    return client.get(response["Location"])


def test_a_guest_reserves_and_lands_on_the_booking_with_its_secret_link(client):
    tt = TicketTypeFactory(capacity=10, price=Decimal("20.00"))

    response = reserve(client, tt.event, {tt: 2}, email="guest@example.com")

    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/bookings/{booking.pk}/?token={booking.access_token}"
    assert (booking.email, booking.buyer, booking.status, booking.total) == (
        "guest@example.com", None, Booking.Status.RESERVED, Decimal("40.00"))
    tt.refresh_from_db()
    assert tt.held == 2


def test_a_logged_in_buyer_reserves_without_an_email_field_and_without_a_token(client):
    user = UserFactory(email="ada@example.com")
    client.force_login(user)
    tt = TicketTypeFactory()

    response = reserve(client, tt.event, {tt: 1})

    booking = Booking.objects.get()
    assert response["Location"] == f"/bookings/{booking.pk}/"
    assert (booking.buyer, booking.email) == (user, "ada@example.com")


def test_a_guest_must_give_an_email(client):
    tt = TicketTypeFactory()
    html = page(refused(client, tt.event, {tt: 1}))
    assert "This field is required." in html
    assert 'aria-invalid="true"' in html
    assert not Booking.objects.exists()
    assert f'name="qty_{tt.pk}" min="0" max="10" value="1"' in html  # what was typed stays


def test_choosing_no_tickets_is_an_error(client):
    tt = TicketTypeFactory()
    html = page(refused(client, tt.event, {tt: 0}, email="a@example.com"))
    assert "Choose at least one ticket." in html
    assert 'value="a@example.com"' in html


def test_a_negative_quantity_is_a_field_error(client):
    tt = TicketTypeFactory()
    html = page(refused(client, tt.event, {tt: -1}, email="a@example.com"))
    assert "Ensure this value is greater than or equal to 0." in html
    assert not Booking.objects.exists()


def test_sold_out_shows_what_is_left(client):
    tt = TicketTypeFactory(name="General", capacity=3)

    html = page(refused(client, tt.event, {tt: 5}, email="a@example.com"))

    assert "Your tickets could not be reserved" in html
    assert "Only 3 &#x27;General&#x27; tickets left." in html
    assert "General: 3 tickets left" in html
    assert not Booking.objects.exists()


def test_more_than_the_limit_per_booking_is_refused(client):
    tt = TicketTypeFactory(name="VIP", max_per_booking=2)
    html = page(refused(client, tt.event, {tt: 3}, email="a@example.com"))
    assert "At most 2 &#x27;VIP&#x27; tickets per booking." in html


def test_sales_closed_is_refused(client):
    tt = TicketTypeFactory(name="Early", sales_end=timezone.now() - timedelta(hours=1))
    html = page(refused(client, tt.event, {tt: 1}, email="a@example.com"))
    assert "Sales for &#x27;Early&#x27; are closed." in html


def test_reserving_a_draft_event_is_not_found(client):
    tt = TicketTypeFactory(event__status=Event.Status.DRAFT)
    assert reserve(client, tt.event, {tt: 1}, email="a@example.com").status_code == 404


def test_reserve_accepts_only_post(client):
    event = EventFactory()
    assert client.get(reverse("bookings:reserve", kwargs={"event_pk": event.pk})).status_code == 405


def test_busy_shows_the_very_busy_page(client):
    tt = TicketTypeFactory()
    with mock.patch("bookings.views.booking_reserve", side_effect=Busy()):
        response = reserve(client, tt.event, {tt: 1}, email="a@example.com")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    html = response.content.decode()
    assert "We are very busy right now" in html
    assert title(html) == "Very busy · Ticketing"
