"""The organizer's back office in a real browser at 1280 px and 390 px (issue 17, items 3 and 5).

The event list fits a 1280 px window with its filters (no sideways scrolling, not even inside the
list), the bookings list shows total, tickets and created, the event page's ticket-type rows fit,
the Publish / Unpublish button works, and the dashboard of an event with one day of sales is
readable on a desktop and on a phone. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from backoffice.tests.admin_support import PASSWORD, paid_booking
from bookings.tests.factories import make_booking
from events.models import Event, Organizer
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The widest a page may be: the window, not one pixel more.
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture
def organizer(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("create_organizer", "Northern Lights Productions", username="nora", email="nora@example.com",
                 password=PASSWORD, stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Organizer.objects.get(slug="northern-lights-productions")


@pytest.fixture
def shows(organizer):
    """Events with long names and four-digit revenue, in several currencies and time zones."""
    start = timezone.now() + timedelta(days=20)
    specs = [("Midnight Sun Festival: Three Nights of Music by the Fjord", "Europe/Oslo", "NOK", "950.00"),
             ("Symphony Orchestra Season Opening Gala with Guest Soloists", "Europe/Berlin", "EUR", "149.00"),
             ("Hamlet", "Europe/London", "GBP", "45.00")]
    events = []
    for i, (name, zone, currency, price) in enumerate(specs):
        event = EventFactory(organizer=organizer, name=name, timezone=zone, currency=currency,
                             starts_at=start + timedelta(days=i), ends_at=start + timedelta(days=i, hours=4),
                             venue="Harbour Warehouse Concert Hall", city="Oslo")
        tt = TicketTypeFactory(event=event, name="General admission", price=Decimal(price), capacity=1200)
        TicketTypeFactory(event=event, name="VIP", price=Decimal(price) * 3, capacity=80, position=1)
        paid_booking(tt, n=4, email=f"fan{i}@example.com")
        make_booking(items=[(tt, 2)], email=f"holder{i}@example.com")
        events.append(event)
    return events


def log_in(page, site):
    page.goto(site.url + "/admin/")
    page.get_by_label("Username").fill("nora")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def column_texts(page) -> list[str]:
    return [t.strip().lower() for t in page.locator("#result_list thead th .text").all_inner_texts()]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_event_list_fits_and_the_bookings_list_shows_its_figures(site, open_page, shows, viewport):
    page, shot = open_page(viewport)
    log_in(page, site)
    assert page.locator("#site-name").inner_text() == "Ticketing back office"
    assert page.title() == "Events, bookings and payments | Ticketing back office"
    assert page.locator("#nav-sidebar").count() == 0
    shot(page, "index")

    page.goto(site.url + "/admin/events/event/")
    headers = column_texts(page)
    for name in ["name", "date", "status", "sold", "held", "available", "capacity", "revenue"]:
        assert name in headers, headers
    row = page.locator("#result_list tbody tr", has_text="Midnight Sun Festival")
    assert "NOK" in row.locator(".field-revenue_column").inner_text()
    assert "3,800.00" in row.locator(".field-revenue_column").inner_text()  # 4 x 950 NOK
    assert row.locator(".field-date_column").inner_text().endswith(("CET", "CEST"))
    assert page.evaluate(OVERFLOW) <= 0
    if viewport == "desktop":
        # At 1280 px every column is in view, the list itself does not scroll sideways either.
        assert page.evaluate("() => { const r = document.querySelector('#changelist-form .results');"
                             " return r.scrollWidth - r.clientWidth; }") <= 0
        assert page.locator("#changelist-filter").is_visible()
    shot(page, "events")

    page.goto(site.url + "/admin/bookings/booking/")
    shot(page, "bookings")
    headers = column_texts(page)
    for name in ["total", "tickets", "created"]:
        assert name in headers, headers
    row = page.locator("#result_list tbody tr", has_text="fan0@example.com")
    assert row.locator(".field-total_column").inner_text() == "3,800.00\u00a0NOK"
    assert row.locator(".field-ticket_count").inner_text() == "4"
    assert page.evaluate(OVERFLOW) <= 0
    if viewport == "desktop":
        assert page.evaluate("() => { const r = document.querySelector('#changelist-form .results');"
                             " return r.scrollWidth - r.clientWidth; }") <= 0


def test_the_event_pages_ticket_type_rows_fit(site, open_page, shows):
    page, shot = open_page("desktop")
    log_in(page, site)
    page.goto(site.url + f"/admin/events/event/{shows[0].pk}/change/")
    inline = page.locator(".inline-group").first
    assert inline.locator("tbody tr.has_original").count() == 2
    assert page.evaluate(OVERFLOW) <= 0
    assert page.evaluate("() => { const t = document.querySelector('.inline-group .tabular');"
                         " return t.scrollWidth - t.clientWidth; }") <= 0
    inline.scroll_into_view_if_needed()
    shot(page, "ticket-types")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_publish_button_publishes_and_unpublishes(site, open_page, organizer, viewport):
    event = EventFactory(organizer=organizer, name="Spring Fair", status=Event.Status.DRAFT)
    TicketTypeFactory(event=event)
    page, shot = open_page(viewport)
    log_in(page, site)
    page.goto(site.url + f"/admin/events/event/{event.pk}/change/")
    shot(page, "draft")

    page.get_by_role("button", name="Publish").click()
    page.wait_for_load_state()
    assert page.locator(".messagelist").inner_text().strip() == "“Spring Fair” is published: it is on sale."
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
    assert page.evaluate(OVERFLOW) <= 0
    shot(page, "published")

    page.get_by_role("button", name="Unpublish (stop sales)").click()
    page.wait_for_load_state()
    assert "unpublished: sales stopped" in page.locator(".messagelist").inner_text()
    event.refresh_from_db()
    assert event.status == Event.Status.DRAFT
    assert page.get_by_role("button", name="Publish").is_visible()
    shot(page, "unpublished")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_dashboard_with_one_day_of_sales(site, open_page, organizer, viewport):
    event = EventFactory(organizer=organizer, name="Midnight Sun Festival: Three Nights of Music by the Fjord",
                         timezone="Europe/Oslo", currency="NOK", starts_at=timezone.now() + timedelta(days=10),
                         ends_at=timezone.now() + timedelta(days=10, hours=5))
    general = TicketTypeFactory(event=event, name="General admission (standing, all three nights)",
                                price=Decimal("950.00"), capacity=1200)
    TicketTypeFactory(event=event, name="VIP", price=Decimal("2850.00"), capacity=80, position=1)
    paid_booking(general, n=3)
    page, shot = open_page(viewport)
    log_in(page, site)
    page.goto(site.url + f"/admin/events/event/{event.pk}/dashboard/")

    summary = page.locator(".dashboard-summary").inner_text()
    assert summary.startswith("3 tickets sold, all on ")
    assert page.locator("svg.dashboard-chart rect.bar").count() == 7  # a week, not one wide block
    assert page.locator("[data-total-revenue]").inner_text() == "2,850.00\u00a0NOK"
    assert page.locator("svg.dashboard-chart").bounding_box()["width"] <= page.viewport_size["width"]
    assert page.evaluate(OVERFLOW) <= 0
    shot(page, "dashboard")
