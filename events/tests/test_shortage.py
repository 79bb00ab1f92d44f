"""`events.rules.shortage`: sold out (sold tickets fill it) or all reserved (holds fill the rest)."""

import pytest

from events.models import Event, TicketType
from events.rules import ALL_RESERVED, SOLD_OUT, cap_shortage, event_shortage, shortage


def event(capacity=None, sold=0, held=0):
    return Event(capacity=capacity, sold=sold, held=held)


def tt(capacity, sold=0, held=0):
    return TicketType(capacity=capacity, sold=sold, held=held)


@pytest.mark.parametrize("counters, expected", [
    ((5, 0, 0), None),
    ((5, 3, 1), None),
    ((5, 5, 0), SOLD_OUT),
    ((5, 3, 2), ALL_RESERVED),
    ((5, 0, 5), ALL_RESERVED),
])
def test_a_type_is_sold_out_when_sales_fill_it_and_all_reserved_when_holds_do(counters, expected):
    assert shortage(tt(*counters), event=event()) == expected


def test_the_event_cap_decides_when_it_is_the_shorter():
    free_type = tt(10)
    assert shortage(free_type, event=event(capacity=4, sold=4)) == SOLD_OUT
    assert shortage(free_type, event=event(capacity=4, sold=2, held=2)) == ALL_RESERVED
    assert shortage(free_type, event=event(capacity=4, sold=2, held=1)) is None
    # a type full of holds under a cap that sales filled: sold out, holds or not
    assert shortage(tt(2, held=2), event=event(capacity=4, sold=4)) == SOLD_OUT


def test_cap_shortage_is_none_without_a_cap_or_with_seats_left():
    assert cap_shortage(event()) is None
    assert cap_shortage(event(capacity=3, sold=1)) is None
    assert cap_shortage(event(capacity=3, sold=1, held=2)) == ALL_RESERVED
    assert cap_shortage(event(capacity=3, sold=3)) == SOLD_OUT


def test_event_shortage_from_the_catalogue_sums():
    assert event_shortage(event(), available=2, unsold=5) is None
    assert event_shortage(event(), available=0, unsold=0) == SOLD_OUT
    assert event_shortage(event(), available=0, unsold=3) == ALL_RESERVED
    assert event_shortage(event(capacity=5, sold=5), available=0, unsold=3) == SOLD_OUT
