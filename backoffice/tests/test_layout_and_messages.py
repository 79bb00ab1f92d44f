"""Issue 17 in the back office: the site's name, compact lists, money and dates one way, pluralised
messages, the event page's Publish / Unpublish button, the door list CSV and a one-day dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from backoffice.tests.admin_support import admin_client, change_url, messages_of, paid_booking
from backoffice.views import sold_per_day
from bookings.models import Ticket
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.models import Refund
from payments.services import refund_issue, refund_process

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]

EVENTS = "/admin/events/event/"


def test_the_admin_carries_the_shops_name_its_stylesheet_and_no_nav_sidebar(client_x):
    html = client_x.get("/admin/").content.decode()
    assert "Ticketing back office" in html and "Django administration" not in html
    assert "<title>Events, bookings and payments | Ticketing back office</title>" in html
    assert "css/backoffice.css" in html
    page = client_x.get(EVENTS).content.decode()
    assert 'id="nav-sidebar"' not in page and "css/backoffice.css" in page


def test_event_list_shows_the_columns_compactly_with_local_dates(client_x, x):
    Event.objects.filter(pk=x.event.pk).update(
        timezone="Europe/Oslo", starts_at=datetime(2027, 3, 6, 18, 30, tzinfo=UTC),
        ends_at=datetime(2027, 3, 6, 22, 0, tzinfo=UTC))
    response = client_x.get(EVENTS)
    cl = response.context["cl"]
    # One organizer: its name would repeat on every row.
    assert cl.list_display[1:] == ["name", "date_column", "status", "sold_column", "held_column",
                                   "available_column", "capacity_column", "revenue_column"]
    (event,) = cl.result_list
    assert cl.model_admin.date_column(event) == "Sat 6 Mar 2027, 19:30 CET"
    assert "Sat 6 Mar 2027, 19:30 CET" in response.content.decode()


def test_a_superuser_sees_the_organizer_column(x, y):
    from events.tests.factories import UserFactory

    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    assert "organizer" in admin_client(root).get(EVENTS).context["cl"].list_display


def test_revenue_has_the_currency_and_thousands_separators(client_x, x):
    big = TicketTypeFactory(event=x.event, name="Box", price=Decimal("1200.00"), capacity=5)
    paid_booking(big, n=1)
    (event,) = client_x.get(EVENTS).context["cl"].result_list
    assert event.revenue == Decimal("1320.00")
    html = client_x.get(EVENTS).content.decode()
    assert "€1,320.00" in html


def test_bookings_list_shows_reference_total_tickets_and_created(client_x, x):
    response = client_x.get("/admin/bookings/booking/")
    cl = response.context["cl"]
    assert {"total_column", "ticket_count", "created_column"} <= set(cl.list_display)
    html = response.content.decode()
    assert x.confirmed.reference in html and "€40.00" in html
    row = next(b for b in cl.result_list if b.pk == x.confirmed.pk)
    assert cl.model_admin.ticket_count(row) == 2
    assert cl.model_admin.created_column(row) in html


def test_action_messages_are_pluralised(client_x, x):
    drafts = [EventFactory(organizer=x.organizer, status=Event.Status.DRAFT) for _ in range(3)]
    for event in drafts:
        TicketTypeFactory(event=event)
    response = client_x.post(EVENTS, {"action": "publish_events", "_selected_action": [str(drafts[0].pk)]},
                             follow=True)
    assert "1 event published." in messages_of(response)
    response = client_x.post(EVENTS, {"action": "publish_events",
                                      "_selected_action": [str(e.pk) for e in drafts[1:]]}, follow=True)
    assert "2 events published." in messages_of(response)
    response = client_x.post(EVENTS, {"action": "unpublish_events",
                                      "_selected_action": [str(e.pk) for e in drafts]}, follow=True)
    assert "3 events unpublished." in messages_of(response)


# --- the Publish / Unpublish button ----------------------------------------------------------------


def _publish_url(event) -> str:
    return f"{EVENTS}{event.pk}/publish/"


def test_the_publish_button_publishes_and_the_unpublish_button_unpublishes(client_x, x):
    draft = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT, name="Spring Fair")
    TicketTypeFactory(event=draft)
    html = client_x.get(change_url(draft)).content.decode()
    assert f'action="{_publish_url(draft)}"' in html and ">Publish</button>" in html
    assert "csrfmiddlewaretoken" in html

    response = client_x.post(_publish_url(draft), follow=True)
    draft.refresh_from_db()
    assert draft.status == Event.Status.PUBLISHED
    assert response.redirect_chain[-1][0] == change_url(draft)
    assert "“Spring Fair” is published: it is on sale." in messages_of(response)
    assert "Unpublish (stop sales)</button>" in response.content.decode()

    response = client_x.post(_publish_url(draft), follow=True)
    draft.refresh_from_db()
    assert draft.status == Event.Status.DRAFT
    assert "“Spring Fair” is unpublished: sales stopped." in messages_of(response)


def test_the_publish_button_shows_the_services_refusal(client_x, x):
    empty = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT)  # no ticket type
    response = client_x.post(_publish_url(empty), follow=True)
    empty.refresh_from_db()
    assert empty.status == Event.Status.DRAFT
    assert "Add at least one ticket type before publishing." in messages_of(response)


def test_the_publish_button_needs_a_post_csrf_and_the_permission(x, y, client_x):
    assert client_x.get(_publish_url(x.event)).status_code == 405
    # Another organizer's event does not exist for X.
    client_x.post(_publish_url(y.event))
    y.event.refresh_from_db()
    assert y.event.status == Event.Status.PUBLISHED
    # Without the CSRF token the admin refuses the POST.
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(x.user)
    assert strict.post(_publish_url(x.event)).status_code == 403
    x.event.refresh_from_db()
    assert x.event.status == Event.Status.PUBLISHED
    # A view-only member sees no button and cannot post.
    from django.contrib.auth.models import Permission

    from events.tests.factories import UserFactory

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    x.organizer.members.add(viewer)
    viewer_client = admin_client(viewer)
    assert "/publish/" not in viewer_client.get(change_url(x.event)).content.decode()
    assert viewer_client.post(_publish_url(x.event)).status_code == 403


def test_a_cancelled_event_has_no_publish_button(client_x, x):
    Event.objects.filter(pk=x.event.pk).update(status=Event.Status.CANCELLED)
    assert "/publish/" not in client_x.get(change_url(x.event)).content.decode()


# --- the door list ------------------------------------------------------------------------------------


def test_the_csv_leaves_out_refunded_tickets_and_holds(client_x, x):
    import csv
    import io

    refunded = paid_booking(x.general, n=1, email="changed-mind@x.example")
    refund_process(refund_id=refund_issue(booking=refunded, reason="test").pk)
    assert Refund.objects.get(payment__booking=refunded).status == Refund.Status.SUCCEEDED
    content = b"".join(client_x.get(f"{EVENTS}{x.event.pk}/export/").streaming_content)
    assert content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert {r["ticket_status"] for r in rows} == {"issued"}
    assert "changed-mind@x.example" not in {r["email"] for r in rows}
    assert "holder@x.example" not in {r["email"] for r in rows}
    assert len(rows) == Ticket.objects.filter(ticket_type__event=x.event, status=Ticket.Status.ISSUED).count()


# --- the dashboard with one day of sales ----------------------------------------------------------


def test_one_day_of_sales_draws_a_week_and_says_it_in_a_sentence(client_x, x):
    quiet = EventFactory(organizer=x.organizer, timezone="Europe/Oslo", currency="NOK")
    tt = TicketTypeFactory(event=quiet, price=Decimal("350.00"), capacity=100)
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(noon, tick=False):
        paid_booking(tt, n=3)
        bars = sold_per_day(quiet)
        response = client_x.get(f"{EVENTS}{quiet.pk}/dashboard/")
    assert len(bars) == 7 and [b.sold for b in bars] == [0, 0, 0, 0, 0, 0, 3]
    assert bars[0].day == bars[-1].day - timedelta(days=6)
    html = response.content.decode()
    assert f"3 tickets sold, all on {bars[-1].label}." in html
    assert "1,050.00\u00a0NOK" in html  # the revenue, formatted like the site's money
