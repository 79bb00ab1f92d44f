"""Buyer accounts on the site (sign up, log in/out, password reset) and the site's error pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.views.defaults import server_error

from events.tests.factories import UserFactory
from events.tests.pages import page, title

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-enough-Passw0rd"


# --- Sign up ----------------------------------------------------------------------------------


def test_the_signup_page_has_labelled_fields(client):
    html = page(client.get(reverse("signup")))
    assert title(html) == "Sign up · Ticketing"
    for name in ("username", "email", "password1", "password2"):
        assert f'<label for="id_{name}">' in html
    assert 'autocomplete="email"' in html


def test_signing_up_creates_the_account_logs_in_and_goes_to_my_bookings(client):
    response = client.post(reverse("signup"), {"username": "ada", "email": "ada@example.com",
                                               "password1": PASSWORD, "password2": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("bookings:mine")
    user = User.objects.get(username="ada")
    assert user.email == "ada@example.com"
    assert user.check_password(PASSWORD)
    assert "Log out (ada)" in page(client.get("/"))


def test_signing_up_goes_back_to_next_but_never_off_site(client):
    data = {"username": "ada", "email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post(reverse("signup"), {**data, "next": "/events/x/"})["Location"] == "/events/x/"
    client.logout()
    data.update(username="bob", email="bob@example.com")
    assert client.post(reverse("signup"), {**data, "next": "https://evil.example/"})["Location"] == "/bookings/"


def test_signup_needs_an_email_and_matching_strong_passwords(client):
    html = page(client.post(reverse("signup"), {"username": "ada", "email": "",
                                                "password1": "123", "password2": "456"}))
    assert "This field is required." in html
    assert "The two password fields didn’t match." in html
    assert not User.objects.exists()


def test_signup_refuses_an_email_already_in_use(client):
    UserFactory(email="ada@example.com")
    html = page(client.post(reverse("signup"), {"username": "ada2", "email": "ADA@example.com",
                                                "password1": PASSWORD, "password2": PASSWORD}))
    assert "An account with this e-mail address already exists" in html


def test_a_logged_in_user_skips_signup(client):
    client.force_login(UserFactory())
    assert client.get(reverse("signup"))["Location"] == "/bookings/"


# --- Log in / log out -------------------------------------------------------------------------


def test_log_in_with_the_sites_page_and_return_to_next(client):
    UserFactory(username="ada", password=PASSWORD)
    html = page(client.get(reverse("login"), {"next": "/bookings/"}))
    assert title(html) == "Log in · Ticketing"
    assert 'name="next" value="/bookings/"' in html

    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD, "next": "/bookings/"})

    assert response.status_code == 302 and response["Location"] == "/bookings/"
    assert "My bookings" in page(client.get("/bookings/"))


def test_a_wrong_password_shows_an_error(client):
    UserFactory(username="ada", password=PASSWORD)
    html = page(client.post(reverse("login"), {"username": "ada", "password": "wrong"}))
    assert "Please enter a correct username and password." in html
    assert 'role="alert"' in html


def test_log_out_is_a_post_from_the_header(client):
    client.force_login(UserFactory())
    html = page(client.get("/"))
    assert f'<form method="post" action="{reverse("logout")}"' in html
    assert client.get(reverse("logout")).status_code == 405

    response = client.post(reverse("logout"))

    assert response["Location"] == "/"
    assert "Log in" in page(client.get("/"))


def test_the_header_links_to_login_and_signup_with_the_current_page_as_next(client):
    html = page(client.get("/", {"q": "jazz"}))
    assert f'href="{reverse("login")}?next=/%3Fq%3Djazz"' in html
    assert f'href="{reverse("signup")}?next=/%3Fq%3Djazz"' in html


# --- Password reset ---------------------------------------------------------------------------


def test_password_reset_by_email(client):
    user = UserFactory(username="ada", email="ada@example.com", password="old-pass-123-xyz")

    html = page(client.get(reverse("password_reset")))
    assert title(html) == "Reset your password · Ticketing"
    response = client.post(reverse("password_reset"), {"email": "ada@example.com"}, follow=True)
    assert "Check your e-mail" in page(response)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Reset your Ticketing password"
    assert "Your username is ada." in message.body
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in page(form_page)
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD}, follow=True)

    assert "Your new password is set." in page(response)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"}, follow=True)
    assert "Check your e-mail" in page(response)
    assert mail.outbox == []


def test_a_used_reset_link_says_so(client):
    html = page(client.get("/accounts/reset/MQ/set-password/"))
    assert "The password reset link was already used or has expired." in html


# --- Error pages --------------------------------------------------------------------------------


def test_404_page_in_the_sites_style(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert title(html) == "Page not found · Ticketing"
    assert 'class="site-header"' in html


def test_500_page_renders_without_a_request_context(rf):
    response = server_error(rf.get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert title(html) == "Something went wrong · Ticketing"
    assert "/static/css/site.css" in html


def test_a_csrf_failure_shows_the_sites_page():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "x", "password": "y"})
    assert response.status_code == 403
    html = response.content.decode()
    assert title(html) == "Form expired · Ticketing"
    assert "Nothing was changed." in html


def test_every_page_has_a_skip_link_and_a_language(client):
    html = page(client.get(reverse("login")))
    assert '<a class="skip-link" href="#main">Skip to content</a>' in html
    assert '<html lang="en">' in html
    assert '<main id="main"' in html


# --- Back to the event after signing up or logging in (issue 17 item 10) ------------------------------


@pytest.fixture
def event():
    from events.tests.factories import TicketTypeFactory

    return TicketTypeFactory(event__name="Summer Jazz Night", event__slug="summer-jazz-night").event


def _link(html: str, text: str) -> str:
    return re.search(rf'<a href="([^"]+)">{text}</a>', html).group(1).replace("&amp;", "&")


def test_signing_up_from_the_event_page_comes_back_to_the_event(client, event):
    event_page = page(client.get(event.get_absolute_url()))
    back = f"?next={event.get_absolute_url()}"  # Django's urlencode keeps the slashes
    assert f'href="{reverse("signup")}{back}"' in event_page  # the reserve form's hint
    assert f'href="{reverse("login")}{back}"' in event_page

    signup = page(client.get(_link(event_page, "Sign up")))
    assert f'name="next" value="{event.get_absolute_url()}"' in signup
    assert _link(signup, "Log in") == reverse("login") + back
    response = client.post(reverse("signup") + back, {
        "username": "mia", "email": "mia@example.com", "password1": PASSWORD, "password2": PASSWORD,
        "next": event.get_absolute_url()})

    assert response.status_code == 302 and response["Location"] == event.get_absolute_url()
    assert "Log out (mia)" in page(client.get(response["Location"]))


def test_logging_in_from_the_event_page_comes_back_to_the_event(client, event):
    UserFactory(username="ada", password=PASSWORD)
    event_page = page(client.get(event.get_absolute_url()))

    login = page(client.get(_link(event_page, "Log in")))
    assert f'name="next" value="{event.get_absolute_url()}"' in login
    assert _link(login, "Create an account") == f"{reverse('signup')}?next={event.get_absolute_url()}"
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD,
                                               "next": event.get_absolute_url()})

    assert response["Location"] == event.get_absolute_url()


@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/events/", "http://testserver@evil.example/",
                                    "javascript:alert(1)", "/\\evil.example"])
def test_an_unsafe_next_is_refused_on_sign_up(client, unsafe):
    signup = page(client.get(reverse("signup"), {"next": unsafe}))
    assert 'name="next" value="/bookings/"' in signup
    assert "evil" not in signup

    response = client.post(reverse("signup"), {"username": "eve", "email": "eve@example.com",
                                               "password1": PASSWORD, "password2": PASSWORD, "next": unsafe})

    assert response.status_code == 302 and response["Location"] == reverse("bookings:mine")


def test_an_unsafe_next_is_refused_on_log_in(client):
    UserFactory(username="ada", password=PASSWORD)

    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD,
                                               "next": "https://evil.example/"})

    assert response["Location"] == reverse("bookings:mine")
