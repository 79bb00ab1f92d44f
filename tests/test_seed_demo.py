import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from bookings.selectors import inventory_mismatches
from events.models import Event, TicketType
from events.selectors import event_list_published

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_logins_and_published_events_once():
    call_command("seed_demo")
    counts = (Event.objects.count(), TicketType.objects.count(), get_user_model().objects.count())
    call_command("seed_demo")

    assert (Event.objects.count(), TicketType.objects.count(), get_user_model().objects.count()) == counts
    users = get_user_model().objects
    assert users.get(username="organizer").is_staff and users.get(username="organizer").organizers.exists()
    assert users.get(username="buyer").check_password("buyer")
    assert users.get(username="admin").is_superuser
    published = list(event_list_published())
    assert len(published) >= 3
    assert all(event.ticket_types.count() >= 2 for event in published)
    vip = TicketType.objects.get(name="VIP")
    assert vip.capacity - vip.sold - vip.held == 3
    assert Event.objects.filter(capacity__isnull=False).exists()
    assert inventory_mismatches() == []


def test_the_run_commands_embedded_defaults_migrate_and_seed_on_sqlite(tmp_path):
    """The run command's path with no PostgreSQL or Redis: SQLite, filesystem broker."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["CELERY_BROKER_URL"] = "memory://"  # the queued capture tasks must not reach a real broker
    for command in (["migrate", "-v", "0"], ["seed_demo"], ["check_inventory"]):
        result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "Inventory OK" in result.stdout
