"""`manage.py seed_demo`: demo data made through the services, idempotent, true to its counters."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.selectors import inventory_mismatches
from events.models import Event, Organizer, TicketType
from events.selectors import event_list_published
from payments.models import Payment

ROOT = Path(__file__).resolve().parent.parent
# seed_demo builds each demo event with its sales and their (mock gateway) payments in one
# transaction, all or nothing: gateway calls inside a transaction, on purpose, for demo data.
pytestmark = pytest.mark.lock_rules_off("seed_demo builds each demo event, payments included, in one transaction")


@pytest.fixture(autouse=True)
def _debug_on(settings):
    """As under the run command (DJANGO_DEBUG=true): seed_demo refuses to run with debug off unless forced."""
    settings.DEBUG = True


def _snapshot():
    return {
        "events": sorted(Event.objects.values_list("slug", "status", "capacity", "sold", "held")),
        "types": sorted(TicketType.objects.values_list("event__slug", "name", "capacity", "sold", "held")),
        "users": sorted(get_user_model().objects.values_list("username", "is_staff", "is_superuser")),
        "bookings": Booking.objects.count(),
        "tickets": Ticket.objects.count(),
        "payments": Payment.objects.count(),
        "organizers": sorted(Organizer.objects.values_list("slug", flat=True)),
    }


@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_logins_and_published_events():
    call_command("seed_demo")

    users = get_user_model().objects
    organizer = users.get(username="organizer")
    assert organizer.is_staff and not organizer.is_superuser and organizer.check_password("organizer")
    assert organizer.has_perm("events.add_event") and organizer.has_perm("events.change_tickettype")
    assert list(organizer.organizers.values_list("name", flat=True)) == ["Demo Productions"]
    buyer = users.get(username="buyer")
    assert buyer.check_password("buyer") and not buyer.is_staff
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")

    published = list(event_list_published())
    assert len(published) >= 3
    assert len({e.city for e in published}) >= 3 and len({e.category for e in published}) >= 3
    assert all(e.starts_at > timezone.now() for e in published)
    assert all(2 <= e.ticket_types.count() <= 3 for e in published)
    assert any(e.capacity is not None for e in published)


@pytest.mark.django_db(transaction=True)
def test_seed_demo_sells_the_nearly_sold_out_tickets_through_confirmed_bookings():
    call_command("seed_demo")

    vip = TicketType.objects.get(name="VIP")
    assert (vip.capacity, vip.sold, vip.held) == (50, 47, 0)
    issued = Ticket.objects.filter(ticket_type=vip, status=Ticket.Status.ISSUED,
                                   booking__status=Booking.Status.CONFIRMED)
    assert issued.count() == 47
    assert not Booking.objects.exclude(status=Booking.Status.CONFIRMED).exists()
    assert inventory_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_running_seed_demo_again_changes_nothing():
    call_command("seed_demo")
    first = _snapshot()

    call_command("seed_demo")

    assert _snapshot() == first
    assert inventory_mismatches() == []


@pytest.mark.django_db
def test_the_demo_organizer_can_open_the_admin(client):
    call_command("seed_demo")
    client.force_login(get_user_model().objects.get(username="organizer"))

    response = client.get("/admin/")

    assert response.status_code == 200
    assert b"Events" in response.content


def _access(user):
    """What a login may do in the admin: flags, groups, direct and effective permissions."""
    user = get_user_model().objects.get(pk=user.pk)  # a fresh permission cache
    return {"staff": user.is_staff, "superuser": user.is_superuser, "active": user.is_active,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "direct": sorted(user.user_permissions.values_list("codename", flat=True)),
            "effective": sorted(user.get_all_permissions())}


@pytest.mark.django_db(transaction=True)
def test_the_demo_organizer_is_what_create_organizer_makes():
    call_command("seed_demo")
    call_command("create_organizer", "Real Productions", username="real", email="real@example.com",
                 password="correct-horse-battery-42", stdout=open(os.devnull, "w"))  # noqa: SIM115
    users = get_user_model().objects

    demo, real = _access(users.get(username="organizer")), _access(users.get(username="real"))

    assert demo == real
    assert demo["groups"] == ["Organizer"] and demo["direct"] == []
    assert not any(p.endswith("_organizer") for p in demo["effective"])


@pytest.mark.django_db
def test_the_demo_organizer_cannot_see_or_add_organizers(client):
    call_command("seed_demo")
    client.force_login(get_user_model().objects.get(username="organizer"))

    index = client.get("/admin/")
    assert b"/admin/events/organizer/" not in index.content
    assert client.get("/admin/events/organizer/").status_code == 403
    assert client.get("/admin/events/organizer/add/").status_code == 403
    assert client.post("/admin/events/organizer/add/", {"name": "Mine", "slug": "mine"}).status_code == 403
    # Nor from the event form's "add another" button.
    assert b"add_id_organizer" not in client.get("/admin/events/event/add/").content
    assert list(Organizer.objects.values_list("slug", flat=True)) == ["demo-productions"]


@pytest.mark.django_db
def test_seed_demo_takes_back_permissions_an_older_run_gave_the_organizer_login():
    from django.contrib.auth.models import Permission

    call_command("seed_demo")
    organizer = get_user_model().objects.get(username="organizer")
    organizer.user_permissions.add(*Permission.objects.filter(codename__endswith="_organizer"))

    call_command("seed_demo")

    assert not organizer.user_permissions.exists()


@pytest.mark.django_db
def test_seed_demo_refuses_to_run_with_debug_off(settings):
    settings.DEBUG, settings.DEMO = False, False

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")

    assert not get_user_model().objects.filter(username__in=["admin", "organizer", "buyer"]).exists()
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_runs_with_debug_off_when_forced(settings):
    settings.DEBUG = False

    call_command("seed_demo", force=True)

    assert get_user_model().objects.filter(username="organizer").exists()
    assert Event.objects.exists()


def dev_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db(transaction=True)
def test_seed_demo_runs_in_demo_mode_with_debug_off(settings):
    settings.DEBUG, settings.DEMO = False, True

    call_command("seed_demo")

    assert get_user_model().objects.filter(username="organizer").exists()


def test_the_run_commands_embedded_defaults_migrate_and_seed_on_sqlite(tmp_path):
    """The run command's path with no PostgreSQL or Redis: SQLite, filesystem broker, demo mode with debug off."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG", "DJANGO_DEMO",
                        "DJANGO_SECRET_KEY", "EMAIL_URL", "PAYMENT_GATEWAY"}}
    env = dev_script().run_environment(env)  # as scripts/dev.py run sets it: DJANGO_DEMO=true, DJANGO_DEBUG=false
    assert (env["DJANGO_DEMO"], env["DJANGO_DEBUG"]) == ("true", "false")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["CELERY_BROKER_URL"] = "memory://"  # the queued capture tasks must not reach a real broker
    for command in (["migrate", "-v", "0"], ["seed_demo"], ["check_inventory"]):
        result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "Inventory OK" in result.stdout
