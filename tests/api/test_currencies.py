"""Issue 17 item 1: currencies are ISO 4217 codes, time zones IANA zones, prices fit the currency's decimals:
in core.currencies, the model/services and the API (its usual 400 with field errors)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.currencies import CURRENCIES, currency_decimals, price_decimals, validate_currency, validate_price
from core.errors import InvalidInput
from core.templatetags.site_tags import money
from events.models import Event, TicketType
from events.services import event_update, ticket_type_create, ticket_type_update
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory

API = "/api/v1"


def test_the_table_has_the_active_codes_with_their_minor_units():
    assert len(CURRENCIES) > 150
    assert (currency_decimals("JPY"), currency_decimals("EUR"), currency_decimals("KWD"),
            currency_decimals("BHD")) == (0, 2, 3, 3)
    assert CURRENCIES["NOK"] == ("Norwegian Krone", 2)
    assert "HRK" not in CURRENCIES and "XAU" not in CURRENCIES and "XTS" not in CURRENCIES
    assert price_decimals("KWD") == 2  # amounts are stored with two places


@pytest.mark.parametrize("code", ["EURO", "eur", "XXX", "", "ABC"])
def test_unknown_codes_are_refused(code):
    with pytest.raises(ValidationError):
        validate_currency(code)


@pytest.mark.parametrize("amount, currency, ok", [
    ("10.50", "JPY", False), ("10.00", "JPY", True), ("1500", "JPY", True), ("10.5", "EUR", True),
    ("10.55", "EUR", True), ("10.555", "EUR", False), ("0", "KRW", True),
])
def test_a_price_may_have_as_many_decimals_as_its_currency(amount, currency, ok):
    if ok:
        validate_price(Decimal(amount), currency)
    else:
        with pytest.raises(ValidationError) as exc:
            validate_price(Decimal(amount), currency)
        assert exc.value.code == "invalid"


def test_money_takes_its_decimals_from_the_currency_table():
    assert money(Decimal("58"), "EUR") == "€58.00"
    assert money(Decimal("1234"), "EUR") == "€1,234.00"
    assert money(Decimal("1500"), "JPY") == "¥1,500"
    assert money(Decimal("12.5"), "KWD") == "12.500\u00a0KWD"
    assert money(Decimal("49"), "CHF") == "49.00\u00a0CHF"


@pytest.mark.django_db
def test_the_service_refuses_a_yen_price_with_decimals_on_the_price_field():
    event = EventFactory(currency="JPY")
    with pytest.raises(InvalidInput) as exc:
        ticket_type_create(event=event, name="Floor", price=Decimal("10.50"), capacity=10)
    assert list(exc.value.errors) == ["price"]
    assert not TicketType.objects.filter(event=event).exists()
    tt = ticket_type_create(event=event, name="Floor", price=Decimal("1000"), capacity=10)
    with pytest.raises(InvalidInput):
        ticket_type_update(ticket_type=tt, price=Decimal("999.99"))


@pytest.mark.django_db
def test_an_event_cannot_move_to_a_currency_its_prices_do_not_fit():
    event = EventFactory(currency="EUR")
    TicketTypeFactory(event=event, price=Decimal("10.50"))
    with pytest.raises(InvalidInput) as exc:
        event_update(event=event, currency="JPY")
    assert list(exc.value.errors) == ["currency"]
    event.refresh_from_db()
    assert event.currency == "EUR"
    event_update(event=event, currency="USD")


@pytest.mark.django_db
def test_the_model_refuses_an_unknown_currency_and_zone():
    event = EventFactory.build(organizer=OrganizerFactory(), currency="ZZZ", timezone="Europe/Atlantis")
    with pytest.raises(ValidationError) as exc:
        event.full_clean(exclude=["slug"])
    assert {"currency", "timezone"} <= set(exc.value.message_dict)


# --- API -----------------------------------------------------------------------------------------------------


@pytest.fixture
def member():
    return UserFactory(username="member")


@pytest.fixture
def event(member):
    organizer = OrganizerFactory(slug="acme", members=[member])
    return EventFactory(organizer=organizer, currency="JPY", status=Event.Status.DRAFT)


def event_body(**overrides) -> dict:
    starts = timezone.now() + timedelta(days=30)
    return {"name": "Gala", "venue": "Opera", "city": "Oslo", "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(), "timezone": "Europe/Oslo", "currency": "NOK",
            **overrides}


@pytest.mark.django_db
@pytest.mark.parametrize("overrides, field", [
    ({"currency": "XYZ"}, "currency"), ({"currency": "EURO"}, "currency"),
    ({"timezone": "Europe/Atlantis"}, "timezone"),
])
def test_the_api_refuses_unknown_currencies_and_zones(client_for, assert_problem, member, event, overrides, field):
    body = assert_problem(client_for(member).post(f"{API}/events/", event_body(**overrides)), 400, "invalid")
    assert field in body["errors"]
    assert client_for(member).post(f"{API}/events/", event_body()).status_code == 201


@pytest.mark.django_db
def test_the_api_refuses_a_yen_price_with_decimals(client_for, assert_problem, member, event):
    url = f"{API}/events/{event.pk}/ticket-types/"
    body = assert_problem(client_for(member).post(url, {"name": "Floor", "price": "10.50", "capacity": 5}), 400,
                          "invalid")
    assert list(body["errors"]) == ["price"]
    assert "no decimal places" in body["errors"]["price"][0]
    response = client_for(member).post(url, {"name": "Floor", "price": "1500", "capacity": 5})
    assert response.status_code == 201, response.json()
