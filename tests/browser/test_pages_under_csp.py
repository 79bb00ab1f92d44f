"""The Content-Security-Policy (`default-src 'self'`, no inline scripts or styles) breaks no page: the site,
the lockout page, the admin (lists, forms with inlines and widgets, the dashboard, actions) and the API
docs (Swagger UI, Redoc) work in Chromium with nothing blocked. `open_page` fails a test on any blocked
script, style, image, font or worker (a `securitypolicyviolation` event or Chromium's console error)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "a-long-enough-Passw0rd"


def csp_of(page, url: str) -> str:
    response = page.goto(url)
    assert response.ok, (url, response.status)
    return response.headers["content-security-policy"]


@pytest.fixture
def event():
    event = EventFactory(name="Summer Jazz Night", slug="summer-jazz-night", status=Event.Status.PUBLISHED,
                         starts_at=timezone.now() + timedelta(days=30), currency="EUR")
    TicketTypeFactory(event=event, name="General admission", price=Decimal("35.00"), capacity=200)
    return event


@pytest.fixture
def superuser(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


def admin_login(page, site):
    page.goto(site.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.url + "/admin/")


def test_the_site_pages_work_under_the_policy(site, open_page, event):
    page, shot = open_page("desktop")

    policy = csp_of(page, site.url + "/")
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    shot(page, "home")
    page.goto(site.url + event.get_absolute_url())
    page.wait_for_timeout(5_500)  # the availability fragment refreshes itself (htmx) every 5 s
    shot(page, "event")
    page.get_by_label('Number of “General admission” tickets').fill("1")
    page.get_by_label("E-mail address").fill("guest@example.com")
    page.get_by_role("button", name="Reserve tickets").click()
    page.wait_for_url(re.compile(r"/bookings/[0-9a-f-]{36}/\?token="))
    assert re.fullmatch(r"1[45]:\d\d left to pay\.", page.locator(".countdown").inner_text())  # site.js ran
    shot(page, "booking")
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"):
        page.goto(site.url + path)


def test_the_lockout_page_is_styled_from_a_file(site, open_page, settings):
    from playwright.sync_api import expect

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page, shot = open_page("desktop", expected=(r"status of 429",))
    for _ in range(5):
        page.goto(site.url + "/accounts/login/")
        page.get_by_label("Username").fill("nobody")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()

    page.get_by_role("heading", name="Too many login attempts").wait_for()
    page.wait_for_load_state("load")  # the stylesheet too, not only the markup
    expect(page.locator(".note")).to_have_css("border-left-style", "solid")  # css/lockout.css applied
    shot(page, "lockout")


def test_the_admin_works_under_the_policy(site, open_page, superuser, event):
    organizer = OrganizerFactory(name="Acme Live")
    Event.objects.filter(pk=event.pk).update(organizer=organizer)
    make_booking(items=[(event.ticket_types.get(), 2)], email="buyer@example.com")
    # Chromium asks every page without an icon for /favicon.ico (404 here, logged as a console error);
    # every other answer of 400 or more (a missing script or stylesheet) still fails the test.
    page, shot = open_page("desktop", expected=(r"status of 404",))
    failed = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    admin_login(page, site)
    assert "default-src 'self'" in csp_of(page, site.url + "/admin/")
    shot(page, "index")
    page.goto(site.url + "/admin/events/event/")
    page.locator("#action-toggle").check()  # actions.js
    assert page.locator("tr.selected").count() >= 1
    shot(page, "events")
    page.goto(site.url + f"/admin/events/event/{event.pk}/change/")
    rows = page.locator(".dynamic-ticket_types").count()
    page.locator(".add-row a").first.click()  # inlines.js
    assert page.locator(".dynamic-ticket_types").count() == rows + 1
    page.locator(".datetimeshortcuts a", has_text="Today").first.click()  # calendar widgets
    shot(page, "event-form")
    page.goto(site.url + f"/admin/events/event/{event.pk}/dashboard/")
    numbers = page.locator("table.dashboard-numbers")
    assert numbers.evaluate("e => e.getBoundingClientRect().width") > 0.9 * numbers.evaluate(
        "e => e.parentElement.getBoundingClientRect().width")  # css/event-dashboard.css applied
    shot(page, "dashboard")
    page.goto(site.url + "/admin/bookings/booking/")
    page.goto(site.url + "/admin/auth/user/add/")
    page.goto(site.url + f"/admin/auth/user/{superuser.pk}/password/")
    shot(page, "password")
    assert failed == []


def test_swagger_ui_works_under_the_policy(site, open_page):
    page, shot = open_page("desktop")

    policy = csp_of(page, site.url + "/api/docs/")

    assert "script-src" not in policy and "unsafe-inline" not in policy
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 10
    page.locator(".opblock-summary", has_text="/api/v1/auth/token/").first.click()
    page.get_by_role("button", name="Try it out").click()
    shot(page, "swagger")


def test_redoc_works_under_the_policy(site, open_page):
    """Redoc's bundle shows a logo from its makers' CDN: blocked (no CDN, no request leaves the site), and
    Redoc hides the broken image itself."""
    page, shot = open_page("desktop", expected=(r"cdn\.redoc\.ly/redoc/logo-mini\.svg",))

    csp_of(page, site.url + "/api/redoc/")

    page.get_by_role("heading", name=re.compile("Ticketing API")).wait_for()
    page.get_by_placeholder("Search...").fill("token")
    page.wait_for_timeout(1_000)
    shot(page, "redoc")
