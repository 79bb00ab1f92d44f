import pytest
from django.urls import reverse

from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


def test_home_lists_published_events_with_a_badge(client):
    tt = TicketTypeFactory(event__name="Jazz Night", capacity=5)
    EventFactory(name="Secret draft", status=Event.Status.DRAFT)

    response = client.get(reverse("events:list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Jazz Night" in html and "Secret draft" not in html
    assert "Few left" in html
    assert tt.event.get_absolute_url() in html


def test_event_page_shows_ticket_types_and_availability(client):
    tt = TicketTypeFactory(name="Balcony", capacity=7)
    response = client.get(tt.event.get_absolute_url())
    assert response.status_code == 200
    assert "Balcony" in response.content.decode()


def test_a_draft_event_page_is_not_found(client):
    event = EventFactory(status=Event.Status.DRAFT)
    assert client.get(event.get_absolute_url()).status_code == 404
