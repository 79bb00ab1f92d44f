"""Issue 17 item 1: the demo's events start at a sensible hour on their own zone's clock."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command

from events.models import Event
from payments.management.commands.seed_demo import local_start


@time_machine.travel(datetime(2026, 12, 5, 23, 30, tzinfo=UTC), tick=False)
def test_a_demo_event_starts_at_19_00_local_time_on_the_zones_own_date():
    # 23:30 UTC is already 6 December in Oslo: the date counts from the zone's today.
    starts = local_start({"timezone": "Europe/Oslo", "days": 1})
    assert starts == datetime(2026, 12, 7, 19, tzinfo=zoneinfo.ZoneInfo("Europe/Oslo"))
    assert starts.astimezone(UTC) == datetime(2026, 12, 7, 18, tzinfo=UTC)
    assert local_start({"timezone": "Europe/Berlin", "days": 1, "hour": 9}).hour == 9


@pytest.mark.django_db(transaction=True)
@pytest.mark.lock_rules_off("seed_demo builds each demo event, payments included, in one transaction")
def test_seed_demo_events_start_on_the_hour_in_their_own_zone(settings):
    settings.DEBUG = True  # as under the run command: seed_demo refuses to run with debug off
    call_command("seed_demo")
    events = list(Event.objects.all())
    assert events
    for event in events:
        local = event.starts_at.astimezone(zoneinfo.ZoneInfo(event.timezone))
        assert (local.minute, local.second) == (0, 0)
        assert local.hour == (9 if event.category == Event.Category.CONFERENCE else 19), event.name
