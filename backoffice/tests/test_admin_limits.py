"""The event's own limits per buyer in the organizer back office (issue 15, item 6)."""

from __future__ import annotations

import pytest

from backoffice.tests.admin_support import change_form_data, change_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]


def test_an_organizer_sets_the_events_limits_per_buyer_through_the_service(client_x, x):
    data = change_form_data(client_x, change_url(x.event))
    assert {"max_holds_per_buyer", "max_holds_per_ip", "max_tickets_per_buyer"} <= set(data)
    data.update(max_holds_per_buyer="1", max_holds_per_ip="", max_tickets_per_buyer="0")

    response = client_x.post(change_url(x.event), data)

    assert response.status_code == 302
    x.event.refresh_from_db()
    assert (x.event.max_holds_per_buyer, x.event.max_holds_per_ip, x.event.max_tickets_per_buyer) == (1, None, 0)


def test_a_negative_limit_is_a_field_error(client_x, x):
    data = change_form_data(client_x, change_url(x.event))
    data["max_tickets_per_buyer"] = "-1"
    response = client_x.post(change_url(x.event), data)
    assert response.status_code == 200
    assert "max_tickets_per_buyer" in response.context["adminform"].form.errors
    x.event.refresh_from_db()
    assert x.event.max_tickets_per_buyer is None
