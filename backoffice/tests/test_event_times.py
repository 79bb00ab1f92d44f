"""Issue 17 item 1 in the back office: an event's and its ticket types' times are entered and shown in the
event's own zone (labelled with it); time zone and currency are choices; prices fit the currency."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from backoffice.tests.admin_support import change_form_data, change_url
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]

EVENTS = "/admin/events/event/"
TYPES = "/admin/events/tickettype/"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def new_event(client, *, day: str, zone: str = "Europe/Oslo", currency: str = "EUR", price: str = "25.00",
              sales_start: tuple[str, str] = ("", "")) -> dict:
    data = change_form_data(client, f"{EVENTS}add/")
    data.update({
        "name": "Jazz in Oslo", "venue": "Hall", "city": "Oslo", "category": "music", "timezone": zone,
        "currency": currency, "capacity": "",
        "starts_at_0": day, "starts_at_1": "19:30:00", "ends_at_0": day, "ends_at_1": "23:00:00",
        "ticket_types-TOTAL_FORMS": "1",
        "ticket_types-0-name": "Floor", "ticket_types-0-price": price, "ticket_types-0-capacity": "100",
        "ticket_types-0-max_per_booking": "6", "ticket_types-0-position": "0",
        "ticket_types-0-sales_start_0": sales_start[0], "ticket_types-0-sales_start_1": sales_start[1],
    })
    return data


@time_machine.travel(utc(2026, 10, 1, 12), tick=False)
def test_an_event_entered_at_19_30_in_oslo_is_stored_as_18_30_utc_in_winter_and_shown_back_as_19_30(client_x, x):
    data = new_event(client_x, day="2026-12-05", sales_start=("2026-11-01", "10:00:00"))
    response = client_x.post(f"{EVENTS}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = Event.objects.get(name="Jazz in Oslo")
    assert (event.starts_at, event.ends_at) == (utc(2026, 12, 5, 18, 30), utc(2026, 12, 5, 22))
    (floor,) = event.ticket_types.all()
    assert floor.sales_start == utc(2026, 11, 1, 9)  # 10:00 CET

    page = client_x.get(change_url(event))
    form = page.context["adminform"].form
    assert form["starts_at"].value() == datetime(2026, 12, 5, 19, 30)
    html = page.content.decode()
    assert 'value="19:30:00"' in html and 'value="23:00:00"' in html
    assert "Starts at (Europe/Oslo)" in html and "Sales start (Europe/Oslo)" in html
    assert '<option value="Europe/Oslo" selected>' in html


@time_machine.travel(utc(2026, 5, 1, 12), tick=False)
def test_in_summer_19_30_in_oslo_is_17_30_utc(client_x, x):
    response = client_x.post(f"{EVENTS}add/", new_event(client_x, day="2026-07-04"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Event.objects.get(name="Jazz in Oslo").starts_at == utc(2026, 7, 4, 17, 30)


@time_machine.travel(utc(2026, 10, 1, 12), tick=False)
def test_saving_an_unchanged_event_page_keeps_its_times_and_marks_no_row_changed(client_x, x):
    event = x.event
    event.timezone = "America/New_York"
    event.save()
    before = (event.starts_at, event.ends_at, [(t.sales_start, t.sales_end) for t in event.ticket_types.all()])
    data = change_form_data(client_x, change_url(event))
    with pytest.MonkeyPatch.context() as patch:
        calls = []
        patch.setattr("backoffice.admin.events.ticket_type_update", lambda **kw: calls.append(kw))
        response = client_x.post(change_url(event), data)
    assert response.status_code == 302
    assert calls == []
    event.refresh_from_db()
    assert (event.starts_at, event.ends_at, [(t.sales_start, t.sales_end) for t in event.ticket_types.all()]) == before


@time_machine.travel(utc(2026, 10, 1, 12), tick=False)
def test_changing_the_zone_on_the_page_reads_the_times_in_the_new_zone(client_x, x):
    event = x.event
    data = change_form_data(client_x, change_url(event))
    data.update({"timezone": "Asia/Tokyo", "starts_at_0": "2026-12-05", "starts_at_1": "19:30:00",
                 "ends_at_0": "2026-12-05", "ends_at_1": "22:00:00"})
    response = client_x.post(change_url(event), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert (event.timezone, event.starts_at) == ("Asia/Tokyo", utc(2026, 12, 5, 10, 30))


@time_machine.travel(utc(2026, 3, 1, 12), tick=False)
def test_a_time_the_clock_change_skips_is_refused_with_a_form_error(client_x, x):
    data = new_event(client_x, day="2026-03-29")
    data["starts_at_1"] = "02:30:00"  # clocks go from 02:00 to 03:00 in Oslo that night
    response = client_x.post(f"{EVENTS}add/", data)
    assert response.status_code == 200
    assert "starts_at" in response.context["adminform"].form.errors
    assert not Event.objects.filter(name="Jazz in Oslo").exists()


def test_a_ticket_types_own_page_shows_and_reads_its_sales_window_in_the_events_zone(client_x, x):
    x.event.timezone = "Europe/Oslo"
    x.event.save()
    tt = x.general
    tt.sales_start = utc(2026, 1, 10, 9)
    tt.save()
    page = client_x.get(change_url(tt))
    assert page.context["adminform"].form["sales_start"].value() == datetime(2026, 1, 10, 10)
    assert "Sales start (Europe/Oslo)" in page.content.decode()
    data = change_form_data(client_x, change_url(tt))
    data.update({"sales_start_0": "2026-01-10", "sales_start_1": "12:00:00"})
    assert client_x.post(change_url(tt), data).status_code == 302
    tt.refresh_from_db()
    assert tt.sales_start == utc(2026, 1, 10, 11)


def test_the_time_zone_is_a_select_of_iana_zones_and_a_bad_one_is_a_form_error(client_x, x):
    page = client_x.get(f"{EVENTS}add/").content.decode()
    assert '<select name="timezone"' in page and '<option value="Pacific/Auckland">' in page
    data = new_event(client_x, day="2026-12-05", zone="Mars/Olympus")
    response = client_x.post(f"{EVENTS}add/", data)
    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors


def test_the_currency_is_a_select_of_iso_4217_codes_and_a_bad_one_is_a_form_error(client_x, x):
    page = client_x.get(f"{EVENTS}add/").content.decode()
    assert '<select name="currency"' in page and '<option value="NOK">NOK · Norwegian Krone</option>' in page
    response = client_x.post(f"{EVENTS}add/", new_event(client_x, day="2026-12-05", currency="EURO"))
    assert response.status_code == 200
    assert "currency" in response.context["adminform"].form.errors


def test_a_yen_price_with_decimals_is_refused_on_the_ticket_type_row(client_x, x):
    response = client_x.post(f"{EVENTS}add/", new_event(client_x, day="2026-12-05", currency="JPY", price="10.50"))
    assert response.status_code == 200
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    assert "no decimal places" in formset.forms[0].errors["price"][0]
    assert not Event.objects.filter(name="Jazz in Oslo").exists()
    response = client_x.post(f"{EVENTS}add/", new_event(client_x, day="2026-12-05", currency="JPY", price="1500"))
    assert response.status_code == 302
    assert Event.objects.get(name="Jazz in Oslo").ticket_types.get().price == Decimal("1500")


# --- Lists, dashboard, export -----------------------------------------------------------------------------


def test_the_event_list_and_dashboard_show_times_in_the_events_zone(client_x, x):
    event = x.event
    Event.objects.filter(pk=event.pk).update(timezone="Europe/Oslo", starts_at=utc(2026, 12, 5, 18, 30),
                                             ends_at=utc(2026, 12, 5, 22))
    listing = client_x.get(EVENTS).content.decode()
    assert "Sat 5 Dec 2026, 19:30 CET" in listing
    dashboard = client_x.get(f"{EVENTS}{event.pk}/dashboard/").content.decode()
    assert "Sat 5 Dec 2026, 19:30 CET" in dashboard


@time_machine.travel(utc(2026, 11, 2, 8, 15, 7, 123456), tick=False)
def test_the_csv_gives_local_times_without_microseconds_and_names_the_zone(client_x, x):
    from backoffice.tests.admin_support import paid_booking

    Event.objects.filter(pk=x.event.pk).update(timezone="Europe/Oslo")
    booking = paid_booking(TicketType.objects.get(pk=x.general.pk), n=1, email="csv@x.example")
    response = client_x.get(f"{EVENTS}{x.event.pk}/export/")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    (row,) = [r for r in rows if r["email"] == booking.email]
    assert row["time_zone"] == "Europe/Oslo"
    assert row["booked_at"] == "2026-11-02 09:15:07"
    assert row["issued_at"] == "2026-11-02 09:15:07"


def test_prices_in_the_admin_refuse_decimals_the_currency_does_not_have(client_x, x):
    event = EventFactory(organizer=x.organizer, currency="JPY")
    tt = TicketTypeFactory(event=event, price=Decimal("1000"))
    data = change_form_data(client_x, change_url(tt))
    data["price"] = "1000.50"
    response = client_x.post(change_url(tt), data)
    assert response.status_code == 200
    assert "price" in response.context["adminform"].form.errors


@time_machine.travel(utc(2026, 12, 1, 12), tick=False)
def test_the_change_page_runs_on_the_events_clock_and_hides_the_server_time_note(client_x, x):
    Event.objects.filter(pk=x.event.pk).update(timezone="Asia/Tokyo")
    html = client_x.get(change_url(x.event)).content.decode()
    assert 'data-admin-utc-offset="32400"' in html  # the widgets' "Now" is Tokyo's
    assert "css/local-times.css" in html
    html = client_x.get(change_url(x.general)).content.decode()
    assert 'data-admin-utc-offset="32400"' in html
