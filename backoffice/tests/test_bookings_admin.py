"""The organizer back office for bookings and tickets: scoped, read-only, and actions that call the services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from backoffice.tests.admin_support import admin_client, change_url, messages_of, paid_booking
from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.models import TicketType
from events.tests.factories import UserFactory
from payments.models import Refund
from payments.services import refund_issue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]

BOOKINGS = "/admin/bookings/booking/"
TICKETS = "/admin/bookings/ticket/"


def no_trace_of(response, world) -> bool:
    html = response.content.decode()
    return not any(s in html for s in [world.organizer.name, world.event.name, "y.example", world.general.name])


# --- Scoping --------------------------------------------------------------------------------------------


def test_booking_list_search_and_filters_show_only_own_bookings(client_x, x, y):
    response = client_x.get(BOOKINGS)
    assert {b.event_id for b in response.context["cl"].result_list} == {x.event.pk}
    assert response.context["cl"].result_count == 3
    assert no_trace_of(response, y)
    assert client_x.get(BOOKINGS, {"q": "y.example"}).context["cl"].result_count == 0
    code = Ticket.objects.filter(booking=y.confirmed).values_list("code", flat=True)[0]
    assert client_x.get(BOOKINGS, {"q": code}).context["cl"].result_count == 0
    assert client_x.get(BOOKINGS, {"event__id__exact": str(y.event.pk)}).context["cl"].result_count in (0, 3)
    assert all(b.event_id == x.event.pk
               for b in client_x.get(BOOKINGS, {"event__id__exact": str(y.event.pk)}).context["cl"].result_list)


def test_booking_event_filter_lists_only_own_events(x, y):
    from events.tests.factories import EventFactory, TicketTypeFactory

    second = EventFactory(organizer=x.organizer, name="Xylophone Evening")
    make_booking(items=[(TicketTypeFactory(event=second), 1)], email="one@x.example")
    response = admin_client(x.user).get(BOOKINGS)
    cl = response.context["cl"]
    choices = [c["display"] for spec in cl.filter_specs for c in spec.choices(cl)]
    assert {"Xmas Gala", "Xylophone Evening"} <= set(choices)
    assert "Yodel Night" not in choices


def test_booking_search_by_id_and_ticket_code(client_x, x):
    assert [b.pk for b in client_x.get(BOOKINGS, {"q": str(x.confirmed.pk)}).context["cl"].result_list] == [
        x.confirmed.pk
    ]
    code = Ticket.objects.filter(booking=x.confirmed).values_list("code", flat=True)[0]
    assert [b.pk for b in client_x.get(BOOKINGS, {"q": code}).context["cl"].result_list] == [x.confirmed.pk]
    assert client_x.get(BOOKINGS, {"q": "not-a-uuid"}).status_code == 200


def test_other_organizers_booking_page_behaves_as_missing(client_x, y):
    for url in [change_url(y.confirmed), f"{BOOKINGS}{y.confirmed.pk}/history/"]:
        response = client_x.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_booking_autocomplete_returns_only_own_bookings(client_x, x):
    response = client_x.get("/admin/autocomplete/", {"app_label": "payments", "model_name": "payment",
                                                    "field_name": "booking", "term": "example"})
    assert response.status_code == 200
    ids = {r["id"] for r in response.json()["results"]}
    assert ids == {str(b.pk) for b in Booking.objects.filter(event=x.event)}


def test_ticket_list_and_pages_are_scoped(client_x, x, y):
    response = client_x.get(TICKETS)
    assert {t.booking.event_id for t in response.context["cl"].result_list} == {x.event.pk}
    assert no_trace_of(response, y)
    ticket = Ticket.objects.filter(booking=y.confirmed).first()
    assert client_x.get(TICKETS, {"q": ticket.code}).context["cl"].result_count == 0
    assert client_x.get(change_url(ticket))["Location"] == reverse("admin:index")


def test_booking_page_shows_tickets_payments_and_refunds_read_only(client_x, x):
    response = client_x.get(change_url(x.confirmed))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    inlines = {f.formset.model.__name__: f.formset for f in response.context["inline_admin_formsets"]}
    assert {t.pk for t in inlines["Ticket"].queryset} == set(x.confirmed.tickets.values_list("pk", flat=True))
    assert [p.pk for p in inlines["Payment"].queryset] == [x.payment.pk]
    html = response.content.decode()
    assert "40.00" in html and "Captured" in html
    unlucky = x.refund.payment.booking
    page = client_x.get(change_url(unlucky)).content.decode()
    assert "refund_failed" in page and reverse("admin:payments_refund_change", args=[x.refund.pk]) in page


def test_nobody_edits_adds_or_deletes_bookings_in_the_admin(client_x, x):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    for client in (client_x, admin_client(root)):
        assert client.post(change_url(x.confirmed), {"email": "new@x.example", "total": "0"}).status_code == 403
        assert client.get(f"{BOOKINGS}add/").status_code == 403
        assert client.post(f"{BOOKINGS}{x.confirmed.pk}/delete/", {"post": "yes"}).status_code == 403
    x.confirmed.refresh_from_db()
    assert (x.confirmed.email, x.confirmed.total) == ("fan@x.example", Decimal("40.00"))


# --- Actions -----------------------------------------------------------------------------------------------


def shape(refund: Refund) -> tuple:
    return (refund.status, refund.amount, refund.reason, refund.retry_of_id,
            sorted(t.ticket_type.name for t in refund.tickets.all()), refund.payment.amount)


def test_refund_action_asks_then_creates_the_refund_and_task_refund_issue_creates(
    client_x, x, django_capture_on_commit_callbacks
):
    twin = paid_booking(x.general, n=2, email="twin@x.example")
    response = client_x.post(BOOKINGS, {"action": "refund_bookings", "_selected_action": [str(x.confirmed.pk)]})
    assert response.status_code == 200 and "Refund every issued ticket" in response.content.decode()
    assert not Refund.objects.filter(payment__booking=x.confirmed).exists()

    with django_capture_on_commit_callbacks() as by_admin:
        response = client_x.post(BOOKINGS, {"action": "refund_bookings", "_selected_action": [str(x.confirmed.pk)],
                                            "confirm": "yes", "reason": "Moved"}, follow=True)
    with django_capture_on_commit_callbacks() as by_service:
        direct = refund_issue(booking=twin, reason="Moved")

    assert "1 refund queued." in messages_of(response)
    admin_refund = Refund.objects.get(payment__booking=x.confirmed)
    assert shape(admin_refund) == shape(direct) == (
        Refund.Status.PENDING, Decimal("40.00"), "Moved", None, ["Xmas Gala General"] * 2, Decimal("40.00")
    )
    # The same task, for its own refund.
    assert [(c.func.__self__.name, c.args) for c in by_admin] == [
        ("payments.tasks.refund_process_task", (str(admin_refund.pk),))
    ]
    assert [(c.func.__self__.name, c.args) for c in by_service] == [
        ("payments.tasks.refund_process_task", (str(direct.pk),))
    ]
    for callback in by_admin:
        callback()  # the worker's turn: the gateway refunds, the tickets go back on sale
    admin_refund.refresh_from_db()
    x.confirmed.refresh_from_db()
    assert (admin_refund.status, x.confirmed.status) == (Refund.Status.SUCCEEDED, Booking.Status.REFUNDED)


def test_refund_action_reports_bookings_that_cannot_be_refunded(client_x, x):
    response = client_x.post(BOOKINGS, {"action": "refund_bookings", "_selected_action": [str(x.reserved.pk)],
                                        "confirm": "yes", "reason": ""}, follow=True)
    assert f"{x.reserved}: Only a confirmed booking can be refunded." in messages_of(response)
    assert not Refund.objects.filter(payment__booking=x.reserved).exists()


def test_resend_confirmation_sends_the_e_mail_again(client_x, x, mailoutbox):
    response = client_x.post(BOOKINGS, {"action": "resend_confirmation",
                                        "_selected_action": [str(x.confirmed.pk), str(x.reserved.pk)]}, follow=True)
    assert [m.to for m in mailoutbox] == [["fan@x.example"]]
    assert "Xmas Gala" in mailoutbox[0].subject
    assert "1 confirmation sent again." in messages_of(response)
    assert f"{x.reserved}: Only a confirmed booking has a confirmation to send." in messages_of(response)
    x.confirmed.refresh_from_db()
    assert x.confirmed.confirmation_sent_at is not None


def test_cancel_holds_releases_the_tickets_through_booking_cancel(client_x, x):
    response = client_x.post(BOOKINGS, {"action": "cancel_holds",
                                        "_selected_action": [str(x.reserved.pk), str(x.confirmed.pk)]}, follow=True)
    x.reserved.refresh_from_db()
    x.vip.refresh_from_db()
    assert x.reserved.status == Booking.Status.CANCELLED
    assert x.vip.held == 0
    assert set(x.reserved.tickets.values_list("status", flat=True)) == {Ticket.Status.RELEASED}
    assert "1 hold cancelled." in messages_of(response)
    assert f"{x.confirmed}: Only a reservation that is not yet paid can be cancelled." in messages_of(response)


def test_actions_never_touch_other_organizers_bookings(client_x, y, mailoutbox):
    for action in ["refund_bookings", "resend_confirmation", "cancel_holds"]:
        client_x.post(BOOKINGS, {"action": action, "_selected_action": [str(y.confirmed.pk), str(y.reserved.pk)],
                                 "confirm": "yes"})
    y.reserved.refresh_from_db()
    assert y.reserved.status == Booking.Status.RESERVED
    assert not Refund.objects.filter(payment__booking=y.confirmed).exists()
    assert mailoutbox == []


def test_actions_need_their_permissions(x):
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_booking"))
    x.organizer.members.add(clerk)
    client = admin_client(clerk)
    response = client.get(BOOKINGS)
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no action offered
    client.post(BOOKINGS, {"action": "cancel_holds", "_selected_action": [str(x.reserved.pk)]})
    x.reserved.refresh_from_db()
    assert x.reserved.status == Booking.Status.RESERVED
    clerk.user_permissions.add(Permission.objects.get(codename="cancel_booking"))
    client = admin_client(clerk)
    client.post(BOOKINGS, {"action": "cancel_holds", "_selected_action": [str(x.reserved.pk)]})
    x.reserved.refresh_from_db()
    assert x.reserved.status == Booking.Status.CANCELLED


def test_list_shows_ticket_counts_without_a_query_per_row(client_x, x):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        client_x.get(BOOKINGS)
    for i in range(4):
        make_booking(items=[(x.general, i + 1)], email=f"more{i}@x.example")
    with CaptureQueriesContext(connection) as after:
        response = client_x.get(BOOKINGS)
    assert len(after) == len(before)
    counts = {b.email: response.context["cl"].model_admin.ticket_count(b) for b in response.context["cl"].result_list}
    assert counts["more3@x.example"] == 4 and counts["fan@x.example"] == 2
    assert TicketType.objects.get(pk=x.general.pk).held == 10


# --- Guest access tokens never reach the organizer (issue 15 item 11) -----------------------------------


def test_the_admin_never_shows_or_finds_a_bookings_access_token(client_x, x):
    import csv
    import io

    tokens = list(Booking.objects.filter(event=x.event).values_list("access_token", flat=True))
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)

    pages = []
    for client in (client_x, admin_client(superuser)):
        pages += [client.get(BOOKINGS), client.get(change_url(x.confirmed)), client.get(change_url(x.reserved)),
                  client.get(TICKETS), client.get(f"/admin/payments/payment/{x.payment.pk}/change/")]
        assert client.get(BOOKINGS, {"q": tokens[0]}).context["cl"].result_count == 0
        export = client.get(f"/admin/events/event/{x.event.pk}/export/")
        rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
        assert rows[1:] and not any(token in cell for row in rows for cell in row for token in tokens)
        assert "access_token" not in rows[0]

    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        assert not any(token in html for token in tokens)


def test_the_booking_admin_declares_no_access_token_anywhere():
    from django.contrib import admin

    model_admin = admin.site._registry[Booking]
    declared = [*model_admin.list_display, *model_admin.fields, *model_admin.readonly_fields,
                *model_admin.search_fields, *model_admin.list_filter]
    assert not any("access_token" in str(name) for name in declared)
