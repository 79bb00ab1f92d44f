"""The organizer back office for events and ticket types: scoping, service-backed saves, actions,
list columns, the sales dashboard, the CSV export, `create_organizer`, the group and the login lockout."""

from __future__ import annotations

import csv
import importlib
import io
import zoneinfo
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.tests.admin_support import (
    PASSWORD,
    admin_client,
    change_form_data,
    change_url,
    make_organizer,
    messages_of,
    paid_booking,
)
from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.models import Event, Organizer, TicketType
from events.organizer_group import CUSTOM_PERMISSIONS, ORGANIZER_GROUP
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from payments.models import Payment, Refund
from payments.services import event_cancel_and_refund, payment_authorize
from payments.tests.conftest import card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]

EVENTS = "/admin/events/event/"
TYPES = "/admin/events/tickettype/"


def leaks(response, world) -> list[str]:
    """Names of `world` that appear on the page (there must be none)."""
    html = response.content.decode()
    names = [world.organizer.name, world.event.name, world.general.name, world.vip.name, world.confirmed.email]
    return [name for name in names if name in html]


# --- Scoping --------------------------------------------------------------------------------------


def test_event_list_shows_only_own_events_and_no_other_organizer_in_filters(client_x, x, y):
    response = client_x.get(EVENTS)
    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [x.event.pk]
    assert leaks(response, y) == []
    # A forged filter on the other organizer finds nothing of theirs.
    response = client_x.get(EVENTS, {"organizer__id__exact": y.organizer.pk})
    assert y.event not in response.context["cl"].result_list


def test_organizer_filter_choices_never_name_other_organizers(x, y):
    second = Organizer.objects.create(name="Xtra Org", slug="xtra-org")
    second.members.add(x.user)
    EventFactory(organizer=second, name="Xtra Event")
    response = admin_client(x.user).get(EVENTS)
    cl = response.context["cl"]
    choices = [c["display"] for spec in cl.filter_specs for c in spec.choices(cl)]
    assert "Xtra Org" in choices and x.organizer.name in choices
    assert y.organizer.name not in response.content.decode()


def test_events_filter_by_status_date_and_category(client_x, x):
    past = EventFactory(organizer=x.organizer, name="Old Show", category="theatre",
                        starts_at=timezone.now() - timedelta(days=40))
    later = EventFactory(organizer=x.organizer, name="Later Show", status=Event.Status.DRAFT,
                         starts_at=timezone.now() + timedelta(days=20))

    def names(**params):
        return {e.name for e in client_x.get(EVENTS, params).context["cl"].result_list}

    assert names(when="upcoming") == {"Xmas Gala", "Later Show"}
    assert names(when="7d") == {"Xmas Gala"}  # a week away, made a moment before the request
    assert names(when="30d") == {"Xmas Gala", "Later Show"}
    assert names(when="past") == {past.name}
    assert names(status="draft") == {later.name}
    assert names(category="theatre") == {past.name}


def test_search_never_finds_other_organizers_events(client_x, x, y):
    response = client_x.get(EVENTS, {"q": "Yodel"})
    assert list(response.context["cl"].result_list) == []
    response = client_x.get(EVENTS, {"q": "Gala"})
    assert [e.pk for e in response.context["cl"].result_list] == [x.event.pk]


@pytest.mark.parametrize("suffix", ["change/", "history/", "delete/"])
def test_pages_of_other_organizers_event_behave_as_missing(client_x, y, suffix):
    response = client_x.get(f"{EVENTS}{y.event.pk}/{suffix}")
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert leaks(client_x.get(response["Location"]), y) == []


@pytest.mark.parametrize("suffix", ["dashboard/", "export/", "cancel/"])
def test_custom_pages_of_other_organizers_event_are_not_found(client_x, y, suffix):
    assert client_x.get(f"{EVENTS}{y.event.pk}/{suffix}").status_code == 404
    assert client_x.post(f"{EVENTS}{y.event.pk}/{suffix}", {"confirm": "yes"}).status_code == 404
    y.event.refresh_from_db()
    assert y.event.status == Event.Status.PUBLISHED


def test_changing_other_organizers_event_is_refused(client_x, x, y):
    data = change_form_data(client_x, change_url(x.event))
    data["name"] = "Hijacked"
    response = client_x.post(change_url(y.event), data)
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    y.event.refresh_from_db()
    assert y.event.name == "Yodel Night"


def test_event_autocomplete_returns_only_own_events(client_x, x, y):
    for source in [("events", "tickettype"), ("bookings", "booking")]:
        response = client_x.get("/admin/autocomplete/", {"app_label": source[0], "model_name": source[1],
                                                        "field_name": "event", "term": ""})
        assert response.status_code == 200
        assert [r["id"] for r in response.json()["results"]] == [str(x.event.pk)]
        response = client_x.get("/admin/autocomplete/", {"app_label": source[0], "model_name": source[1],
                                                        "field_name": "event", "term": "Yodel"})
        assert response.json()["results"] == []


def test_ticket_type_autocomplete_returns_only_own_types(client_x, x):
    response = client_x.get("/admin/autocomplete/", {"app_label": "bookings", "model_name": "ticket",
                                                    "field_name": "ticket_type", "term": "Night"})
    assert response.json()["results"] == []
    response = client_x.get("/admin/autocomplete/", {"app_label": "bookings", "model_name": "ticket",
                                                    "field_name": "ticket_type", "term": ""})
    assert {r["id"] for r in response.json()["results"]} == {str(x.general.pk), str(x.vip.pk)}


def test_event_add_form_offers_only_own_organizers_and_refuses_another(client_x, x, y):
    response = client_x.get(f"{EVENTS}add/")
    field = response.context["adminform"].form.fields["organizer"]
    assert list(field.queryset) == [x.organizer]
    assert response.context["adminform"].form.initial["organizer"] == x.organizer.pk
    data = new_event_data(client_x)
    data["organizer"] = str(y.organizer.pk)
    response = client_x.post(f"{EVENTS}add/", data)
    assert response.status_code == 200
    assert "organizer" in response.context["adminform"].form.errors
    assert not Event.objects.filter(name="Brand New").exists()


def test_ticket_type_add_form_refuses_other_organizers_event(client_x, x, y):
    response = client_x.post(f"{TYPES}add/", {"event": str(y.event.pk), "name": "Sneaky", "price": "1.00",
                                              "capacity": "5", "max_per_booking": "10", "position": "0"})
    assert response.status_code == 200
    assert "event" in response.context["adminform"].form.errors
    assert not TicketType.objects.filter(name="Sneaky").exists()


def test_ticket_type_list_and_pages_are_scoped(client_x, x, y):
    response = client_x.get(TYPES)
    assert {t.pk for t in response.context["cl"].result_list} == {x.general.pk, x.vip.pk}
    assert leaks(response, y) == []
    assert client_x.get(TYPES, {"q": "Yodel"}).context["cl"].result_count == 0
    assert client_x.get(change_url(y.general))["Location"] == reverse("admin:index")
    spare = TicketTypeFactory(event=y.event, name="Y spare")
    for tt in (y.general, spare):
        data = {"name": "Hijacked", "price": "1.00", "capacity": "999", "max_per_booking": "1", "position": "0"}
        assert client_x.post(change_url(tt), data)["Location"] == reverse("admin:index")
        assert client_x.post(f"{TYPES}{tt.pk}/delete/", {"post": "yes"})["Location"] == reverse("admin:index")
    assert set(TicketType.objects.filter(event=y.event).values_list("name", "capacity")) == {
        ("Yodel Night General", 50), ("Yodel Night VIP", 10), ("Y spare", 100)
    }


def test_other_organizers_event_cannot_be_deleted(client_x, y):
    empty = EventFactory(organizer=y.organizer, status=Event.Status.DRAFT)
    for event in (y.event, empty):
        response = client_x.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"})
        assert response["Location"] == reverse("admin:index")
    assert Event.objects.filter(pk__in=[y.event.pk, empty.pk]).count() == 2


def test_organizer_admin_is_read_only_and_scoped_for_staff_given_organizer_permissions(x, y):
    from django.contrib.auth.models import Permission

    x.user.user_permissions.add(*Permission.objects.filter(codename__endswith="_organizer"))
    client = admin_client(x.user)
    response = client.get("/admin/events/organizer/")
    assert list(response.context["cl"].result_list) == [x.organizer]
    assert client.get(f"/admin/events/organizer/{y.organizer.pk}/change/")["Location"] == reverse("admin:index")
    # Organizers are a superuser's business: its own is read-only, none is added or deleted.
    page = client.get(f"/admin/events/organizer/{x.organizer.pk}/change/")
    assert page.context["has_change_permission"] is False
    client.post(f"/admin/events/organizer/{x.organizer.pk}/change/", {"name": "Renamed", "slug": "renamed"})
    x.organizer.refresh_from_db()
    assert x.organizer.name != "Renamed"
    assert client.get("/admin/events/organizer/add/").status_code == 403
    assert client.post(f"/admin/events/organizer/{x.organizer.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Organizer.objects.filter(pk=x.organizer.pk).exists()


def test_superuser_manages_organizers():
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = admin_client(root)
    assert client.get("/admin/events/organizer/add/").status_code == 200
    client.post("/admin/events/organizer/add/", {"name": "New One", "slug": "new-one"})
    assert Organizer.objects.filter(slug="new-one").exists()


def test_inline_cannot_reach_other_organizers_ticket_type(client_x, x, y):
    data = change_form_data(client_x, change_url(x.event))
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(x.general.pk))
    data[f"{row}-id"] = str(y.general.pk)  # a forged row id
    data[f"{row}-capacity"] = "1"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 200  # the form is refused, nothing saved
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    assert formset.non_form_errors() == ["A row of this list no longer exists; reload the page."]
    y.general.refresh_from_db()
    assert y.general.capacity == 50
    assert set(x.event.ticket_types.all()) == {x.general, x.vip}


def test_actions_never_touch_other_organizers_events(client_x, x, y):
    for action in ["unpublish_events", "cancel_events", "publish_events"]:
        client_x.post(EVENTS, {"action": action, "_selected_action": [str(y.event.pk)], "confirm": "yes"})
    y.event.refresh_from_db()
    assert y.event.status == Event.Status.PUBLISHED
    assert Booking.objects.get(pk=y.reserved.pk).status == Booking.Status.RESERVED


def test_export_action_streams_only_own_bookings(client_x, x, y):
    response = client_x.post(EVENTS, {"action": "export_bookings",
                                      "_selected_action": [str(x.event.pk), str(y.event.pk)]})
    rows = read_csv(response)
    assert {r["event"] for r in rows} == {"Xmas Gala"}


def test_organizer_staff_cannot_open_the_organizer_admin_or_users(client_x):
    assert client_x.get("/admin/events/organizer/").status_code == 403
    assert client_x.get("/admin/auth/user/").status_code == 403


def test_superuser_sees_every_organizers_events(x, y):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    response = admin_client(root).get(EVENTS)
    assert {e.pk for e in response.context["cl"].result_list} == {x.event.pk, y.event.pk}
    assert admin_client(root).get(change_url(y.event)).status_code == 200


# --- Saving through the services --------------------------------------------------------------------


def new_event_data(client) -> dict:
    data = change_form_data(client, f"{EVENTS}add/")
    start = timezone.now() + timedelta(days=30)
    data.update({
        "name": "Brand New", "venue": "Hall", "city": "Lyon", "category": "music", "timezone": "Europe/Paris",
        "currency": "EUR", "capacity": "",
        "starts_at_0": start.date().isoformat(), "starts_at_1": "19:00:00",
        "ends_at_0": start.date().isoformat(), "ends_at_1": "23:00:00",
        "ticket_types-TOTAL_FORMS": "1",
        "ticket_types-0-name": "Floor", "ticket_types-0-price": "25.00", "ticket_types-0-capacity": "100",
        "ticket_types-0-max_per_booking": "6", "ticket_types-0-position": "0",
    })
    return data


def test_adding_an_event_with_a_ticket_type_creates_a_draft_through_the_services(client_x, x):
    response = client_x.post(f"{EVENTS}add/", new_event_data(client_x))
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = Event.objects.get(name="Brand New")
    assert (event.organizer, event.status, event.slug) == (x.organizer, Event.Status.DRAFT, "brand-new")
    assert [(t.name, t.price, t.capacity, t.max_per_booking) for t in event.ticket_types.all()] == [
        ("Floor", Decimal("25.00"), 100, 6)
    ]
    assert response["Location"] == EVENTS


def test_a_ticket_type_the_service_refuses_undoes_the_new_event_too(client_x, x, monkeypatch):
    from core.errors import InvalidInput

    def refuse(*, event, **fields):
        message = "Sales must end after they start."
        raise InvalidInput(message, errors={"sales_end": [message]})

    monkeypatch.setattr("backoffice.admin.events.ticket_type_create", refuse)
    response = client_x.post(f"{EVENTS}add/", new_event_data(client_x))
    assert response.status_code == 200
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    assert formset.forms[0].errors == {"sales_end": ["Sales must end after they start."]}
    assert response.context["adminform"].form.errors == {}
    assert not Event.objects.filter(name="Brand New").exists()  # event_create ran, and was rolled back


def test_event_capacity_below_sold_and_held_is_an_error_on_the_field_and_nothing_is_saved(client_x, x):
    # 3 sold (2 general, 1 VIP) and 1 held on this event.
    data = change_form_data(client_x, change_url(x.event))
    data["capacity"] = "3"
    data["name"] = "Renamed"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["capacity"] == ["Must be at least 4."]
    assert "Capacity cannot be lower than 4" in str(form.non_field_errors())
    x.event.refresh_from_db()
    assert (x.event.name, x.event.capacity) == ("Xmas Gala", None)


def test_ticket_type_capacity_conflict_is_shown_on_its_row_and_rolls_back_the_event_change(client_x, x):
    data = change_form_data(client_x, change_url(x.event))
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(x.general.pk))
    data[f"{row}-capacity"] = "1"  # 2 sold
    data["name"] = "Renamed"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 200
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    errors = {f.instance.pk: f.errors for f in formset.forms if f.errors}
    assert errors == {x.general.pk: {"capacity": ["Must be at least 2."],
                                     "__all__": ["Capacity cannot be lower than 2, the tickets already sold or held."]}}
    x.event.refresh_from_db()
    x.general.refresh_from_db()
    assert (x.event.name, x.general.capacity) == ("Xmas Gala", 50)


def test_event_and_ticket_type_changes_are_saved_by_the_services(client_x, x):
    data = change_form_data(client_x, change_url(x.event))
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(x.general.pk))
    data[f"{row}-capacity"] = "2"
    data[f"{row}-price"] = "22.50"
    data["name"] = "Xmas Gala Deluxe"
    data["capacity"] = "40"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 302
    x.event.refresh_from_db()
    x.general.refresh_from_db()
    assert (x.event.name, x.event.capacity) == ("Xmas Gala Deluxe", 40)
    # Capping the event makes event_update recompute its counters from the types.
    assert (x.event.sold, x.event.held) == (3, 1)
    assert (x.general.capacity, x.general.price) == (2, Decimal("22.50"))


def test_deleting_a_booked_ticket_type_is_refused_with_a_message(client_x, x):
    data = change_form_data(client_x, change_url(x.event))
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(x.general.pk))
    data[f"{row}-DELETE"] = "on"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 200
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    assert formset.non_form_errors() == [
        "Xmas Gala General: Tickets of this type have been booked; set its capacity to what is sold instead."
    ]
    assert TicketType.objects.filter(pk=x.general.pk).exists()


def test_deleting_an_unbooked_ticket_type_goes_through_the_service(client_x, x):
    spare = TicketTypeFactory(event=x.event, name="Spare", capacity=5)
    data = change_form_data(client_x, change_url(x.event))
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(spare.pk))
    data[f"{row}-DELETE"] = "on"
    assert client_x.post(change_url(x.event), data).status_code == 302
    assert not TicketType.objects.filter(pk=spare.pk).exists()


def test_counters_and_status_cannot_be_posted(client_x, x, y):
    slug = x.event.slug
    data = change_form_data(client_x, change_url(x.event))
    assert "status" not in data and "sold" not in data and "held" not in data
    data.update({"status": "cancelled", "sold": "999", "held": "999", "slug": "other",
                 "organizer": str(y.organizer.pk)})
    row = next(k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(x.general.pk))
    data.update({f"{row}-sold": "0", f"{row}-held": "77"})
    assert client_x.post(change_url(x.event), data).status_code == 302
    x.event.refresh_from_db()
    x.general.refresh_from_db()
    assert (x.event.status, x.event.sold, x.event.held, x.event.slug) == (Event.Status.PUBLISHED, 0, 0, slug)
    assert x.event.organizer == x.organizer
    assert (x.general.sold, x.general.held) == (2, 0)


def test_a_cancelled_event_is_read_only(client_x, x):
    event_cancel_and_refund(event=x.event)
    response = client_x.get(change_url(x.event))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert "Cancel event" not in response.content.decode()
    assert client_x.post(change_url(x.event), {"name": "x"}).status_code == 403


def test_ticket_type_admin_saves_through_the_services(client_x, x):
    response = client_x.post(f"{TYPES}add/", {"event": str(x.event.pk), "name": "Balcony", "price": "30.00",
                                              "capacity": "12", "max_per_booking": "4", "position": "3"})
    assert response.status_code == 302
    balcony = TicketType.objects.get(name="Balcony")
    assert (balcony.event, balcony.capacity) == (x.event, 12)
    data = change_form_data(client_x, change_url(x.general))
    data["capacity"] = "0"
    response = client_x.post(change_url(x.general), data)
    assert response.context["adminform"].form.errors["capacity"] == ["Must be at least 2."]


def test_ticket_type_admin_deletes_only_unbooked_types_through_the_service(client_x, x):
    response = client_x.get(f"{TYPES}{x.general.pk}/delete/")
    assert "has been booked: set its capacity to what is sold instead" in response.content.decode()
    client_x.post(f"{TYPES}{x.general.pk}/delete/", {"post": "yes"})
    assert TicketType.objects.filter(pk=x.general.pk).exists()
    spare = TicketTypeFactory(event=x.event, name="Spare")
    assert client_x.post(f"{TYPES}{spare.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not TicketType.objects.filter(pk=spare.pk).exists()


def test_a_deletion_the_service_refuses_at_the_last_moment_is_a_message(client_x, x, monkeypatch):
    from core.errors import HasSales

    empty = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT)

    def booked_meanwhile(*, event):
        event.ticket_types.all().delete()  # a write the refusal must roll back
        raise HasSales()

    TicketTypeFactory(event=empty)
    monkeypatch.setattr("backoffice.admin.events.event_delete", booked_meanwhile)
    response = client_x.post(f"{EVENTS}{empty.pk}/delete/", {"post": "yes"}, follow=True)
    assert "This cannot be deleted because tickets have been sold or held; cancel it instead." in [
        str(m) for m in response.context["messages"]
    ]
    assert Event.objects.filter(pk=empty.pk).exists() and empty.ticket_types.count() == 1


def test_deleting_an_event_with_bookings_is_refused_and_an_empty_one_goes(client_x, x):
    response = client_x.get(f"{EVENTS}{x.event.pk}/delete/")
    assert "has bookings: cancel it instead" in response.content.decode()
    assert client_x.post(f"{EVENTS}{x.event.pk}/delete/", {"post": "yes"}).status_code == 200
    assert Event.objects.filter(pk=x.event.pk).exists()
    empty = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT)
    TicketTypeFactory(event=empty)
    assert client_x.post(f"{EVENTS}{empty.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Event.objects.filter(pk=empty.pk).exists()


# --- List columns ------------------------------------------------------------------------------------


def test_list_columns_show_sold_held_available_capacity_and_revenue(client_x, x):
    response = client_x.get(EVENTS)
    (event,) = response.context["cl"].result_list
    admin_ = response.context["cl"].model_admin
    # general: 2 sold of 50; vip: 1 held + 1 sold (failed refund keeps it issued) of 10.
    assert admin_.sold_column(event) == 3
    assert admin_.held_column(event) == 1
    assert admin_.available_column(event) == 56
    assert admin_.capacity_column(event) == 60
    assert admin_.revenue_column(event) == "€120.00"
    html = response.content.decode()
    assert "€120.00" in html


def test_list_query_count_does_not_grow_with_the_number_of_events(x):
    client = admin_client(x.user)
    client.get(EVENTS)
    with CaptureQueriesContext(connection) as one:
        client.get(EVENTS)
    for i in range(5):
        event = EventFactory(organizer=x.organizer, name=f"More {i}")
        paid_booking(TicketTypeFactory(event=event), n=1)
    with CaptureQueriesContext(connection) as six:
        client.get(EVENTS)
    assert len(six) == len(one)


# --- Actions ------------------------------------------------------------------------------------


def test_publish_and_unpublish_actions_call_the_services(client_x, x):
    draft = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT, name="Draft Show")
    TicketTypeFactory(event=draft)
    empty = EventFactory(organizer=x.organizer, status=Event.Status.DRAFT, name="Empty Show")
    response = client_x.post(EVENTS, {"action": "publish_events",
                                      "_selected_action": [str(draft.pk), str(empty.pk)]}, follow=True)
    draft.refresh_from_db()
    empty.refresh_from_db()
    assert (draft.status, empty.status) == (Event.Status.PUBLISHED, Event.Status.DRAFT)
    texts = [str(m) for m in response.context["messages"]]
    assert "1 event published." in texts
    assert "Empty Show: Add at least one ticket type before publishing." in texts
    client_x.post(EVENTS, {"action": "unpublish_events", "_selected_action": [str(draft.pk)]})
    draft.refresh_from_db()
    assert draft.status == Event.Status.DRAFT


def on_sale(organizer, name: str) -> Event:
    """An event with a confirmed booking of two tickets and a hold of one."""
    event = EventFactory(organizer=organizer, name=name)
    tt = TicketTypeFactory(event=event, name=f"{name} seat", price=Decimal("20.00"))
    paid_booking(tt, n=2, email="fan@x.example")
    make_booking(items=[(tt, 1)], email="holder@x.example")
    return event


def test_cancel_action_asks_first_then_does_what_event_cancel_and_refund_does(
    client_x, x, django_capture_on_commit_callbacks
):
    by_admin, by_service = on_sale(x.organizer, "By admin"), on_sale(x.organizer, "By service")

    response = client_x.post(EVENTS, {"action": "cancel_events", "_selected_action": [str(by_admin.pk)]})
    assert response.status_code == 200
    assert "Cancel these events?" in response.content.decode()
    by_admin.refresh_from_db()
    assert by_admin.status == Event.Status.PUBLISHED  # nothing happened yet

    with django_capture_on_commit_callbacks() as admin_queued:
        response = client_x.post(EVENTS, {"action": "cancel_events", "_selected_action": [str(by_admin.pk)],
                                          "confirm": "yes", "reason": "Storm"}, follow=True)
    with django_capture_on_commit_callbacks() as direct_queued:
        event_cancel_and_refund(event=by_service, reason="Storm")

    assert "1 event cancelled; 1 refund queued." in [str(m) for m in response.context["messages"]]

    def outcome(event):
        event.refresh_from_db()
        return (
            event.status,
            sorted(Booking.objects.filter(event=event).values_list("email", "status")),
            [(r.status, r.amount, r.reason, r.tickets.count())
             for r in Refund.objects.filter(payment__booking__event=event)],
        )

    assert outcome(by_admin) == outcome(by_service) == (
        Event.Status.CANCELLED,
        [("fan@x.example", Booking.Status.CONFIRMED), ("holder@x.example", Booking.Status.CANCELLED)],
        [(Refund.Status.PENDING, Decimal("40.00"), "Storm", 2)],
    )
    assert queued_tasks(admin_queued) == queued_tasks(direct_queued) == ["payments.tasks.refund_process_task"]
    # The admin history says who did it.
    from django.contrib.admin.models import LogEntry

    entry = LogEntry.objects.get(object_id=str(by_admin.pk))
    assert (entry.user, entry.change_message) == (x.user, "Cancelled; 1 refund queued.")


def queued_tasks(callbacks) -> list[str]:
    """The Celery tasks queued after commit (`partial(task.delay, ...)`); other after-commit work
    (forgetting the event page's cached availability) is left out."""
    return [c.func.__self__.name for c in callbacks if hasattr(c, "func")]


def test_cancel_page_of_one_event_cancels_it(client_x, x):
    response = client_x.get(f"{EVENTS}{x.event.pk}/cancel/")
    assert "Xmas Gala" in response.content.decode()
    response = client_x.post(f"{EVENTS}{x.event.pk}/cancel/", {"confirm": "yes", "reason": ""})
    assert response.status_code == 302 and response["Location"] == change_url(x.event)
    x.event.refresh_from_db()
    assert x.event.status == Event.Status.CANCELLED
    assert Booking.objects.get(pk=x.reserved.pk).status == Booking.Status.CANCELLED


def test_the_change_page_links_to_dashboard_export_and_cancel(client_x, x):
    html = client_x.get(change_url(x.event)).content.decode()
    for name in ["dashboard", "export", "cancel"]:
        assert reverse(f"admin:events_event_{name}", args=[x.event.pk]) in html


# --- Dashboard ----------------------------------------------------------------------------------------


def test_dashboard_shows_sales_per_type_the_chart_and_what_needs_attention(client_x, x, y, settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 300
    day1 = timezone.now() - timedelta(days=3)
    with time_machine.travel(day1, tick=False):
        paid_booking(x.general, n=3, email="early@x.example")
    # Authorized, never captured (the capture queued on commit never ran): stuck once old enough.
    stuck = make_booking(items=[(x.general, 1)], email="stuck@x.example")
    payment_authorize(booking=stuck, card=card())
    Payment.objects.filter(booking=stuck).update(updated_at=timezone.now() - timedelta(minutes=10))
    fresh = make_booking(items=[(x.general, 1)], email="fresh@x.example")
    payment_authorize(booking=fresh, card=card())

    response = client_x.get(f"{EVENTS}{x.event.pk}/dashboard/")
    assert response.status_code == 200
    types = {t.name: t for t in response.context["types"]}
    general, vip = types["Xmas Gala General"], types["Xmas Gala VIP"]
    assert (general.sold, general.held, general.available, general.revenue) == (5, 2, 43, Decimal("100.00"))
    assert (vip.sold, vip.held, vip.available, vip.revenue) == (1, 1, 8, Decimal("80.00"))
    assert response.context["totals"] == {"capacity": 60, "sold": 6, "held": 3, "available": 51,
                                          "revenue": Decimal("180.00")}
    bars = response.context["bars"]
    tz = zoneinfo.ZoneInfo(x.event.timezone)
    first, last = timezone.localtime(day1, tz).date(), timezone.localtime(timezone.now(), tz).date()
    assert [(b.day, b.sold) for b in bars if b.sold] == [(first, 3), (last, 3)]
    # The days between are drawn empty, and the chart spans at least a week (the days before are empty).
    assert len(bars) == max(7, (last - first).days + 1) and bars[-1].day == last
    html = response.content.decode()
    assert html.count('class="bar"') == len(bars) and "<svg" in html
    assert [p.booking.email for p in response.context["stuck_payments"]] == ["stuck@x.example"]
    assert [r.pk for r in response.context["failed_refunds"]] == [x.refund.pk]
    assert "stuck@x.example" in html and "fresh@x.example" not in html
    assert leaks(response, y) == []


def test_a_cancellation_that_stopped_half_way_shows_on_the_dashboard_and_the_cancel_action_resumes_it(client_x, x):
    with mock.patch("payments.services.cancellation.refund_issue", side_effect=RuntimeError("worker killed")), \
            pytest.raises(RuntimeError):
        event_cancel_and_refund(event=x.event)  # the cancellation committed, no refund was queued
    dashboard = client_x.get(f"{EVENTS}{x.event.pk}/dashboard/")
    assert dashboard.context["awaiting_cancellation_refund"] == 2
    assert "2 confirmed bookings of this cancelled event wait for their refund" in dashboard.content.decode()

    response = client_x.post(EVENTS, {"action": "cancel_events", "_selected_action": [str(x.event.pk)],
                                      "confirm": "yes", "reason": "Storm"}, follow=True)

    assert "1 event cancelled; 2 refunds queued." in messages_of(response)
    made = Refund.objects.filter(cause=Refund.Cause.EVENT_CANCELLED, reason="Storm")
    assert sorted(made.values_list("amount", flat=True)) == [Decimal("40.00"), Decimal("80.00")]
    dashboard = client_x.get(f"{EVENTS}{x.event.pk}/dashboard/")
    assert dashboard.context["awaiting_cancellation_refund"] == 0
    # The refund that had failed for the VIP ticket is now covered by the cancellation's: nothing to retry.
    assert dashboard.context["failed_refunds"] == []


def test_dashboard_of_an_event_without_sales_says_so(client_x, x):
    quiet = EventFactory(organizer=x.organizer)
    response = client_x.get(f"{EVENTS}{quiet.pk}/dashboard/")
    assert response.status_code == 200
    assert "No tickets sold yet." in response.content.decode()
    assert response.context["stuck_payments"] == [] and response.context["failed_refunds"] == []


# --- CSV export ------------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark spreadsheets look for
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_export_streams_the_issued_tickets_of_the_events_bookings(client_x, x):
    cancelled = make_booking(items=[(x.general, 1)], email="gaveup@x.example")
    from bookings.services import booking_cancel

    booking_cancel(booking=cancelled)
    Ticket.objects.filter(booking=x.confirmed).update(attendee_name="=HYPERLINK(\"http://evil\")")
    response = client_x.get(f"{EVENTS}{x.event.pk}/export/")
    assert response["Content-Disposition"] == f'attachment; filename="bookings-{x.event.slug}.csv"'
    rows = read_csv(response)
    assert sorted((r["email"], r["booking_status"], r["ticket_status"], r["ticket_type"]) for r in rows) == [
        ("fan@x.example", "confirmed", "issued", "Xmas Gala General"),
        ("fan@x.example", "confirmed", "issued", "Xmas Gala General"),
        ("unlucky@x.example", "confirmed", "issued", "Xmas Gala VIP"),
    ]  # the hold of holder@ and the cancelled hold of gaveup@ are not attendees
    codes = set(Ticket.objects.filter(booking=x.confirmed).values_list("code", flat=True))
    assert {r["ticket_code"] for r in rows if r["email"] == "fan@x.example"} == codes
    # A formula typed as a name is not run by a spreadsheet.
    assert {r["attendee_name"] for r in rows if r["email"] == "fan@x.example"} == {"'=HYPERLINK(\"http://evil\")"}


def test_export_needs_permission_to_view_bookings(x):
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.add(*Group.objects.get(name=ORGANIZER_GROUP).permissions.filter(codename="view_event"))
    x.organizer.members.add(user)
    client = admin_client(user)
    assert client.get(change_url(x.event)).status_code == 200
    assert client.get(f"{EVENTS}{x.event.pk}/export/").status_code == 403


# --- create_organizer and the group ------------------------------------------------------------------------


def test_create_organizer_makes_a_staff_member_in_the_organizer_group():
    out = io.StringIO()
    call_command("create_organizer", "Acme Events", username="ann", email="ann@example.com", password=PASSWORD,
                 stdout=out)
    organizer = Organizer.objects.get(slug="acme-events")
    user = organizer.members.get()
    assert (user.username, user.email, user.is_staff, user.is_superuser) == ("ann", "ann@example.com", True, False)
    assert user.check_password(PASSWORD)
    assert list(user.groups.values_list("name", flat=True)) == [ORGANIZER_GROUP]
    assert user.has_perm("events.change_event") and user.has_perm("bookings.refund_booking")
    assert not user.has_perm("bookings.change_booking")
    assert "Created organizer 'Acme Events'" in out.getvalue()


def test_create_organizer_asks_for_the_password_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["typo-password-1", "typo-password-2", PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    call_command("create_organizer", "Acme", username="bob", email="bob@example.com", stdout=io.StringIO(),
                 stderr=io.StringIO())
    assert Organizer.objects.get(slug="acme").members.get().check_password(PASSWORD)


def test_create_organizer_refuses_without_terminal_or_with_a_taken_name(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="--password is required"):
        call_command("create_organizer", "Acme", username="bob", email="bob@example.com")
    make_organizer("Acme", "carol")
    with pytest.raises(CommandError, match="taken"):
        call_command("create_organizer", "Other", username="carol", email="c@example.com", password=PASSWORD)
    with pytest.raises(CommandError, match="slug 'acme' already exists"):
        call_command("create_organizer", "Acme", username="dave", email="d@example.com", password=PASSWORD)
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_organizer", "Weak", username="erin", email="e@example.com", password="123")
    assert not Organizer.objects.filter(slug="weak").exists()


def test_the_migration_creates_the_organizer_group_with_its_permissions():
    migration = importlib.import_module("events.migrations.0002_organizer_group")
    Group.objects.filter(name=ORGANIZER_GROUP).delete()
    migration.create_group(apps, None)
    group = Group.objects.get(name=ORGANIZER_GROUP)
    perms = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert {("events", f"{a}_event") for a in ("view", "add", "change", "delete")} <= perms
    assert {("bookings", "view_booking"), ("bookings", "view_ticket"), ("payments", "view_payment"),
            ("payments", "view_refund")} <= perms
    assert {(app, codename) for app, _m, codename, _n in CUSTOM_PERMISSIONS} <= perms
    assert not any(codename.startswith(("change_", "delete_", "add_")) for app, codename in perms
                   if app in ("bookings", "payments"))


# --- Login lockout ------------------------------------------------------------------------------------------


def login(client, username, password, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)


def test_five_failed_logins_lock_out_that_username_from_that_address(client, x):
    for _ in range(4):
        response = login(client, "xavier", "wrong")
        assert response.status_code == 200 and "Please enter the correct username" in response.content.decode()
    response = login(client, "xavier", "wrong")
    assert response.status_code == 429
    response = login(client, "xavier", PASSWORD)  # even the right password
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address, or another username from this address, is not locked.
    assert login(client, "xavier", PASSWORD, REMOTE_ADDR="10.9.8.7").status_code == 302


def test_the_lockout_is_the_same_for_unknown_and_known_usernames(client, x):
    for username in ["xavier", "nobody-at-all"]:
        first = login(client, username, "wrong")
        assert "Please enter the correct username and password" in first.content.decode()
        for _ in range(4):
            last = login(client, username, "wrong")
        assert last.status_code == 429
        page = last.content.decode()
        assert "Too many login attempts" in page and username not in page
        if username == "xavier":
            known = last.content
    assert last.content == known


def test_the_lockout_ends_fifteen_minutes_after_the_last_failure(client, x):
    for _ in range(5):
        login(client, "xavier", "wrong")
    with time_machine.travel(timezone.now() + timedelta(minutes=14)):
        assert login(client, "xavier", PASSWORD).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(minutes=14 + 16)):
        assert login(client, "xavier", PASSWORD).status_code == 302


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock_out(client, x):
    start = timezone.now()
    for i in range(6):
        with time_machine.travel(start + timedelta(minutes=16 * i)):
            assert login(client, "xavier", "wrong").status_code == 200
    with time_machine.travel(start + timedelta(minutes=16 * 6)):
        assert login(client, "xavier", PASSWORD).status_code == 302


def test_a_locked_out_user_cannot_get_an_api_token_either(client, x):
    for _ in range(5):
        login(client, "xavier", "wrong")
    response = client.post("/api/v1/auth/token/", {"username": "xavier", "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out"
    assert "token" not in response.json()
