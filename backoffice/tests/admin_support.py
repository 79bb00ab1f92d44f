"""Shared setup of the admin tests: two organizers whose staff must never see each other's rows.

Organizers and their staff are made with the `create_organizer` command (so
they hold exactly the "Organizer" group's permissions); bookings, payments and
refunds through the same services production uses.

Its fixtures (`x`, `y`, `client_x`) are registered for the whole suite in the
root conftest's `pytest_plugins`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.models import Event, Organizer, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.models import Payment, Refund
from payments.services import payment_authorize, payment_capture, refund_issue, refund_process
from payments.tests.conftest import card

PASSWORD = "correct-horse-battery-42"
REFUND_FAILS_CARD = "4000000000006660"


def make_organizer(name: str, username: str):
    """An organizer and its first staff member, made by `manage.py create_organizer`."""
    call_command("create_organizer", name, username=username, email=f"{username}@example.com", password=PASSWORD,
                 stdout=_Null())
    user = get_user_model().objects.get(username=username)
    return Organizer.objects.get(members=user), user


class _Null:
    def write(self, *_args, **_kwargs):
        pass

    def flush(self):
        pass


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def paid_booking(tt: TicketType, *, n: int = 2, email: str | None = None, number: str = "4111111111111111"):
    """A confirmed booking with a captured payment (capture called directly: on_commit does not run here)."""
    booking = make_booking(items=[(tt, n)], email=email)
    payment = payment_authorize(booking=booking, card=card(number))
    payment_capture(payment_id=payment.pk)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    return booking


def failed_refund(tt: TicketType, *, email: str) -> Refund:
    """A refund the gateway refused (the card's charge never refunds)."""
    booking = paid_booking(tt, n=1, email=email, number=REFUND_FAILS_CARD)
    refund = refund_issue(booking=booking, reason="test")
    refund = refund_process(refund_id=refund.pk)
    assert refund.status == Refund.Status.FAILED
    return refund


@dataclass
class World:
    """One organizer's rows: an event with two ticket types, bookings in several states, payments, refunds."""

    organizer: Organizer
    user: object
    event: Event
    general: TicketType
    vip: TicketType
    confirmed: Booking
    reserved: Booking
    payment: Payment
    refund: Refund


def make_world(name: str, username: str, *, event_name: str, email_domain: str) -> World:
    organizer, user = make_organizer(name, username)
    event = EventFactory(organizer=organizer, name=event_name, city=f"{name} City")
    general = TicketTypeFactory(event=event, name=f"{event_name} General", price=Decimal("20.00"), capacity=50)
    vip = TicketTypeFactory(event=event, name=f"{event_name} VIP", price=Decimal("80.00"), capacity=10)
    confirmed = paid_booking(general, n=2, email=f"fan@{email_domain}")
    reserved = make_booking(items=[(vip, 1)], email=f"holder@{email_domain}")
    refund = failed_refund(vip, email=f"unlucky@{email_domain}")
    return World(
        organizer=organizer, user=user, event=event, general=general, vip=vip, confirmed=confirmed,
        reserved=reserved, payment=Payment.objects.get(booking=confirmed), refund=refund,
    )


def _field_data(form) -> dict:
    """What a browser would post for `form` as rendered (split date/time widgets included)."""
    from django import forms

    data = {}
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        value = form[name].value()
        if isinstance(field.widget, forms.MultiWidget):
            parts = value if isinstance(value, list) else field.widget.decompress(value)
            for i, part in enumerate(parts):
                data[f"{key}_{i}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        else:
            data[key] = "" if value is None else str(value)
    return data


def change_form_data(client: Client, url: str) -> dict:
    """The POST data of an admin add/change page as it is rendered: the form, inline forms, management forms."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    data = _field_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_field_data(formset.management_form))
        for form in formset.forms:
            data.update(_field_data(form))
    return data


@pytest.fixture
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def x(_fast_password_hashing):
    """Organizer X with its staff member and a world of bookings, payments and refunds."""
    return make_world("Xavier Shows", "xavier", event_name="Xmas Gala", email_domain="x.example")


@pytest.fixture
def y(_fast_password_hashing):
    """Organizer Y: what X must never see."""
    return make_world("Yonder Live", "yonder", event_name="Yodel Night", email_domain="y.example")


@pytest.fixture
def client_x(x, y):
    """An admin client logged in as X's staff member, with Y's rows in the database."""
    return admin_client(x.user)


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]
