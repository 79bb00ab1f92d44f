"""The organizer back office for payments and refunds: scoped, read-only, and the retry of failed refunds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.tests.admin_support import admin_client, change_url, failed_refund, messages_of
from bookings.tests.factories import make_booking
from events.tests.factories import UserFactory
from payments.models import Payment, Refund
from payments.services import payment_authorize, refund_issue, refund_process, refund_retry
from payments.tests.conftest import card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_fast_password_hashing")]

PAYMENTS = "/admin/payments/payment/"
REFUNDS = "/admin/payments/refund/"


def filter_choices(response) -> list[str]:
    cl = response.context["cl"]
    return [c["display"] for spec in cl.filter_specs for c in spec.choices(cl)]


# --- Scoping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAYMENTS, REFUNDS])
def test_lists_search_and_filters_show_only_own_rows(client_x, x, y, url):
    response = client_x.get(url)
    rows = response.context["cl"].result_list
    assert rows and all(x.event.name in str(response.context["cl"].model_admin.event(r)) for r in rows)
    html = response.content.decode()
    assert "Yodel Night" not in html and "y.example" not in html and "Yonder" not in html
    assert "Yodel Night" not in filter_choices(response)
    assert client_x.get(url, {"q": "unlucky@y.example"}).context["cl"].result_count == 0
    assert client_x.get(url, {"q": "unlucky@x.example"}).context["cl"].result_count >= 1


def test_other_organizers_payment_and_refund_pages_behave_as_missing(client_x, y):
    for obj in [y.payment, y.refund]:
        response = client_x.get(change_url(obj))
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_own_payment_and_refund_pages_are_read_only(client_x, x):
    for obj in [x.payment, x.refund]:
        response = client_x.get(change_url(obj))
        assert response.status_code == 200 and response.context["has_change_permission"] is False
        assert client_x.post(change_url(obj), {"amount": "0"}).status_code == 403
    page = client_x.get(change_url(x.refund)).content.decode()
    assert "refund_failed" in page and "Xmas Gala VIP" in page


def test_nobody_adds_or_deletes_payments_or_refunds(client_x, x):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    for client in (client_x, admin_client(root)):
        for url, obj in [(PAYMENTS, x.payment), (REFUNDS, x.refund)]:
            assert client.get(f"{url}add/").status_code == 403
            assert client.post(f"{url}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Payment.objects.filter(pk=x.payment.pk).exists() and Refund.objects.filter(pk=x.refund.pk).exists()


def test_superuser_sees_every_organizers_refunds(x, y):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    response = admin_client(root).get(REFUNDS)
    assert {r.pk for r in response.context["cl"].result_list} == {x.refund.pk, y.refund.pk}


# --- Needs attention ----------------------------------------------------------------------------------------


def test_refund_list_shows_failed_refunds_not_yet_retried(client_x, x):
    response = client_x.get(REFUNDS, {"attention": "failed"})
    assert [r.pk for r in response.context["cl"].result_list] == [x.refund.pk]
    refund_retry(refund=x.refund)
    assert client_x.get(REFUNDS, {"attention": "failed"}).context["cl"].result_count == 0


def test_payment_list_shows_payments_stuck_in_processing(client_x, x, settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 300
    stuck = make_booking(items=[(x.general, 1)], email="stuck@x.example")
    payment = payment_authorize(booking=stuck, card=card())
    fresh = make_booking(items=[(x.general, 1)], email="fresh@x.example")
    payment_authorize(booking=fresh, card=card())
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=6))
    response = client_x.get(PAYMENTS, {"attention": "stuck"})
    assert [p.pk for p in response.context["cl"].result_list] == [payment.pk]


# --- Retry -----------------------------------------------------------------------------------------------------


def test_retry_action_does_what_refund_retry_does(client_x, x, django_capture_on_commit_callbacks):
    twin = failed_refund(x.vip, email="twin@x.example")
    with django_capture_on_commit_callbacks() as by_admin:
        response = client_x.post(REFUNDS, {"action": "retry_refunds", "_selected_action": [str(x.refund.pk)]},
                                 follow=True)
    with django_capture_on_commit_callbacks() as by_service:
        direct = refund_retry(refund=twin)
    assert "1 refund queued again." in messages_of(response)
    retry = Refund.objects.get(retry_of=x.refund)

    def shape(refund):
        return (refund.status, refund.amount, refund.reason, refund.tickets.count())

    assert shape(retry) == shape(direct) == (Refund.Status.PENDING, x.refund.amount, "test", 1)
    assert [(c.func.__self__.name, c.args) for c in by_admin] == [
        ("payments.tasks.refund_process_task", (str(retry.pk),))
    ]
    assert [c.func.__self__.name for c in by_service] == ["payments.tasks.refund_process_task"]


def test_retry_action_reports_refunds_that_cannot_be_retried(client_x, x):
    refund_retry(refund=x.refund)
    response = client_x.post(REFUNDS, {"action": "retry_refunds", "_selected_action": [str(x.refund.pk)]},
                             follow=True)
    assert f"{x.refund}: Only a failed refund can be tried again, once." in messages_of(response)
    assert Refund.objects.filter(retry_of=x.refund).count() == 1


def test_retry_action_refuses_a_refund_whose_tickets_are_being_refunded_again(client_x, x):
    refund_issue(booking=x.refund.payment.booking)  # the buyer asked again: pending, the worker has not run
    assert client_x.get(REFUNDS, {"attention": "failed"}).context["cl"].result_count == 0  # nothing left to retry

    response = client_x.post(REFUNDS, {"action": "retry_refunds", "_selected_action": [str(x.refund.pk)]},
                             follow=True)

    assert f"{x.refund}: Some of these tickets are already refunded or being refunded." in messages_of(response)
    assert not Refund.objects.filter(retry_of=x.refund).exists()
    assert Refund.objects.filter(payment=x.refund.payment, status=Refund.Status.PENDING).count() == 1


def test_refunds_given_back_but_not_recorded_show_in_the_list_and_on_the_dashboard(client_x, x):
    ticket = x.confirmed.tickets.first()
    twins = [Refund.objects.create(payment=x.payment, amount=ticket.price) for _ in range(2)]
    for refund in twins:  # two pending refunds of one ticket: rows an older bug could leave
        refund.tickets.set([ticket])
        refund_process(refund_id=refund.pk)

    response = client_x.get(REFUNDS, {"attention": "unrecorded"})

    assert [r.pk for r in response.context["cl"].result_list] == [twins[1].pk]
    assert "Refunded at the gateway, not recorded" in filter_choices(response)
    assert "Needs attention" in response.content.decode()
    dashboard = client_x.get(f"/admin/events/event/{x.event.pk}/dashboard/")
    assert [r.pk for r in dashboard.context["unrecorded_refunds"]] == [twins[1].pk]
    html = dashboard.content.decode()
    assert "given back by the gateway" in html and "fan@x.example" in html


def test_retry_action_never_touches_other_organizers_refunds(client_x, y):
    client_x.post(REFUNDS, {"action": "retry_refunds", "_selected_action": [str(y.refund.pk)]})
    assert not Refund.objects.filter(retry_of=y.refund).exists()


def test_retry_needs_its_permission(x):
    from django.contrib.auth.models import Permission

    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_refund"))
    x.organizer.members.add(clerk)
    client = admin_client(clerk)
    assert client.get(REFUNDS).context["action_form"] is None
    client.post(REFUNDS, {"action": "retry_refunds", "_selected_action": [str(x.refund.pk)]})
    assert not Refund.objects.filter(retry_of=x.refund).exists()
