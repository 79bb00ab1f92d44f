"""The lock rules (issue 15, item 3): rows locked in one global order, only the rows meant, and
nothing slow (e-mail, the payment gateway) while a transaction holds them.

`payments/tests/lock_rules.py` checks them on every test of the suite; this module checks the
checker (each rule caught, on the SQL the project really sends), then walks every service once
and names the rows each one locks.
"""

import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from bookings.emails import booking_confirmation_send
from bookings.models import Booking, Ticket
from bookings.services import (
    LineItem,
    booking_cancel,
    booking_reserve,
    holds_expire,
    inventory_repair,
    tickets_release_sold,
)
from bookings.tests.conftest import assert_inventory_consistent
from bookings.tests.factories import make_booking
from core.db import update_statement, with_ctes
from events.models import Event, TicketType
from events.services import (
    event_delete,
    event_publish,
    event_unpublish,
    event_update,
    ticket_type_delete,
    ticket_type_update,
)
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.emails import refund_confirmation_send
from payments.gateway import get_gateway
from payments.models import Payment, Refund
from payments.services import (
    event_cancel_and_refund,
    payment_authorize,
    payments_reconcile,
    refund_issue,
    refund_retry,
)
from payments.tests.conftest import card
from payments.tests.lock_rules import LockRuleBroken, lock_rules, tables_locked

EVENT, TYPE, BOOKING, PAYMENT, REFUND = (
    "events_event", "events_tickettype", "bookings_booking", "payments_payment", "payments_refund")


def sql_of(queryset) -> str:
    with transaction.atomic():  # select_for_update compiles only inside one
        return queryset.query.get_compiler(queryset.db).as_sql()[0]


# --- What a statement locks, read from the SQL Django and the hot path send -----------------


@pytest.mark.django_db
def test_the_tables_a_statement_locks_are_read_from_its_sql():
    both = TicketType.objects.select_for_update(no_key=True).select_related("event")
    assert tables_locked(sql_of(both)) == [[TYPE, EVENT]]
    assert tables_locked(sql_of(both.select_for_update(no_key=True, of=("self",)))) == [[TYPE]]
    refund = Refund.objects.select_for_update().select_related("payment__booking__event")
    assert tables_locked(sql_of(refund)) == [[REFUND, PAYMENT, BOOKING, EVENT]]
    # A subquery that only picks the rows locks nothing itself.
    reclaim = Booking.objects.select_for_update(skip_locked=True, no_key=True).filter(
        pk__in=Booking.objects.filter(tickets__ticket_type__event__status="published").values("pk"))
    assert tables_locked(sql_of(reclaim)) == [[BOOKING]]
    assert tables_locked(sql_of(Event.objects.filter(status="published"))) == [[]]


@pytest.mark.django_db
def test_writes_lock_their_target_also_inside_ctes_and_among_several_statements():
    update = update_statement(TicketType.objects.filter(pk__in=[1]), held=0)
    cte = with_ctes([update, ("SELECT 1 FROM \"events_event\" WHERE name = 'a;(b'", [])])
    lock = sql_of(Booking.objects.select_for_update(no_key=True).filter(pk=1))
    assert tables_locked(f"SET LOCAL lock_timeout = 3000; {lock}; {cte[0]}; COMMIT") == [
        [], [BOOKING], [TYPE], []]
    assert tables_locked('DELETE FROM "payments_refund" WHERE "id" = %s') == [[REFUND]]


# --- Each rule is caught ----------------------------------------------------------------------


@pytest.fixture
def rows(db):
    tt = TicketTypeFactory(capacity=5, event__capacity=50)
    booking = make_booking(items=[(tt, 1)])
    return tt, booking


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_a_table_locked_after_a_later_one_in_the_order_is_caught(rows):
    tt, booking = rows
    with lock_rules(enforce=False, tests_too=True) as rules, transaction.atomic():
        Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
    assert len(rules.breaches) == 1
    assert "events_tickettype locked after bookings_booking" in rules.breaches[0]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_a_write_counts_as_a_lock(rows):
    tt, booking = rows
    with lock_rules(enforce=False, tests_too=True) as rules, transaction.atomic():
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
        Event.objects.filter(pk=tt.event_id).update(updated_at=timezone.now())
    assert len(rules.breaches) == 1 and "events_event locked after events_tickettype" in rules.breaches[0]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_two_tables_locked_by_one_statement_are_caught(rows):
    tt, _booking = rows
    with lock_rules(enforce=False, tests_too=True) as rules, transaction.atomic():
        TicketType.objects.select_for_update(no_key=True).select_related("event").get(pk=tt.pk)
    assert len(rules.breaches) == 1 and "locks events_tickettype, events_event together" in rules.breaches[0]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_the_global_order_and_rows_locked_again_pass(rows):
    tt, booking = rows
    with lock_rules(enforce=False, tests_too=True) as rules:
        with transaction.atomic():
            Event.objects.select_for_update(no_key=True).get(pk=tt.event_id)
            TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
            Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
            Event.objects.filter(pk=tt.event_id).update(updated_at=timezone.now())  # held already
        with transaction.atomic():  # a new transaction starts from nothing
            TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
    assert rules.breaches == []
    assert rules.transactions == [[EVENT, TYPE, BOOKING], [TYPE]]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_mail_sent_inside_a_transaction_is_caught_and_after_commit_it_is_not(rows):
    _tt, booking = rows
    with lock_rules(enforce=False, tests_too=True) as rules:
        with transaction.atomic():
            Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
            send_mail("inside", "body", None, ["a@example.com"])
        send_mail("after", "body", None, ["a@example.com"])
    assert [m.subject for m in mail.outbox] == ["inside", "after"]
    assert len(rules.breaches) == 1
    assert "an e-mail is sent inside a transaction (holding locks on ['bookings_booking'])" in rules.breaches[0]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_a_gateway_call_inside_a_transaction_is_caught(rows):
    with lock_rules(enforce=False, tests_too=True) as rules, transaction.atomic():
        get_gateway().authorize(card=card(), amount=Decimal("1.00"), currency="EUR", idempotency_key="k")
    assert len(rules.breaches) == 1 and "the payment gateway is called (authorize)" in rules.breaches[0]


@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_a_breach_raises_where_it_happens(rows):
    tt, booking = rows
    with lock_rules(tests_too=True) as rules, pytest.raises(LockRuleBroken), transaction.atomic():
        Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
    assert len(rules.breaches) == 1


def test_a_transaction_the_test_opens_is_the_tests_and_the_services_inside_are_checked(rows, lock_rules_record):
    tt, booking = rows
    before = len(lock_rules_record.transactions)
    with transaction.atomic():  # a stand-in holding rows out of order, as concurrency tests do
        Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
        booking_cancel(booking=booking)
        send_mail("from the test", "body", None, ["a@example.com"])
    assert lock_rules_record.breaches == []
    assert lock_rules_record.transactions[before:] == [[EVENT, TYPE, BOOKING]]  # booking_cancel's


@pytest.mark.django_db(transaction=True)
@pytest.mark.lock_rules_off("checks the checker on transactions written to break the rules")
def test_connections_of_other_threads_are_checked_too():
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 1)])

    def out_of_order():
        try:
            with transaction.atomic():
                Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
                TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
        finally:
            connection.close()

    with lock_rules(enforce=False, tests_too=True) as rules:
        thread = threading.Thread(target=out_of_order)
        thread.start()
        thread.join(30)
    assert len(rules.breaches) == 1


# --- Every service, once: the rows each one locks -------------------------------------------

def locks_of(rules, run) -> list[list[str]]:
    """The tables locked by each transaction `run()` opens."""
    before = len(rules.transactions)
    run()
    return [tables for tables in rules.transactions[before:] if tables]


@pytest.fixture
def paid(db):
    """A confirmed booking on a capped event whose refund went through; e-mails not sent yet."""
    tt = TicketTypeFactory(capacity=5, price=Decimal("20.00"), event__capacity=50)
    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card())
    from payments.services import payment_capture, refund_process

    with mock.patch("bookings.tasks.send_booking_confirmation.delay"), \
            mock.patch("payments.tasks.refund_process_task.delay"), \
            mock.patch("payments.tasks.send_refund_confirmation.delay"):
        payment_capture(payment_id=payment.pk)
        refund = refund_issue(booking=Booking.objects.get(pk=booking.pk), tickets=[booking.tickets.first()])
        refund_process(refund_id=refund.pk)
    return tt, Booking.objects.get(pk=booking.pk), Refund.objects.get(pk=refund.pk)


@pytest.mark.django_db(transaction=True)
def test_the_refund_e_mail_locks_only_the_refund_and_is_sent_after_commit(paid, lock_rules_record):
    _tt, booking, refund = paid
    assert locks_of(lock_rules_record, lambda: refund_confirmation_send(refund_id=refund.pk)) == [[REFUND]]
    assert [m.to for m in mail.outbox] == [[booking.email]]
    assert refund_confirmation_send(refund_id=refund.pk) is False  # once
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_booking_e_mail_locks_only_the_booking_and_is_sent_after_commit(paid, lock_rules_record):
    _tt, booking, _refund = paid
    assert locks_of(lock_rules_record, lambda: booking_confirmation_send(booking_id=booking.pk)) == [[BOOKING]]
    assert [m.to for m in mail.outbox] == [[booking.email]]
    assert booking_confirmation_send(booking_id=booking.pk) is False  # once
    assert booking_confirmation_send(booking_id=booking.pk, force=True) is True  # the admin's resend
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_the_mail_server_refused_is_claimed_again_by_the_retry(paid):
    _tt, booking, refund = paid
    refused = mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages",
                         side_effect=OSError("mail server down"))
    with refused, pytest.raises(OSError):
        booking_confirmation_send(booking_id=booking.pk)
    with refused, pytest.raises(OSError):
        refund_confirmation_send(refund_id=refund.pk)
    booking.refresh_from_db()
    refund.refresh_from_db()
    assert booking.confirmation_sent_at is None and refund.notified_at is None  # the claims given back

    assert booking_confirmation_send(booking_id=booking.pk) is True
    assert refund_confirmation_send(refund_id=refund.pk) is True
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_ticket_type_change_locks_only_the_ticket_type(lock_rules_record):
    tt = TicketTypeFactory(capacity=5, event__capacity=50)
    assert locks_of(lock_rules_record, lambda: ticket_type_update(ticket_type=tt, capacity=6)) == [[TYPE]]


@pytest.mark.django_db(transaction=True)
def test_event_writes_lock_the_event_then_its_ticket_types(lock_rules_record):
    tt = TicketTypeFactory(capacity=5, event__capacity=None)
    event = tt.event
    assert locks_of(lock_rules_record, lambda: event_update(event=event, capacity=40)) == [[EVENT, TYPE]]
    assert locks_of(lock_rules_record, lambda: event_unpublish(event=event)) == [[EVENT]]
    assert locks_of(lock_rules_record, lambda: event_publish(event=event)) == [[EVENT]]
    draft = EventFactory(status=Event.Status.DRAFT)
    gone, kept = TicketTypeFactory(event=draft), TicketTypeFactory(event=draft)
    assert locks_of(lock_rules_record, lambda: ticket_type_delete(ticket_type=gone)) == [[TYPE]]
    assert locks_of(lock_rules_record, lambda: event_delete(event=draft)) == [[EVENT, TYPE]]
    assert not TicketType.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_every_booking_and_payment_service_keeps_the_global_order(lock_rules_record, time_machine):
    """The whole life of bookings, each transaction in order; the suite-wide fixture fails the test
    on any breach, this names what each use case locks."""
    tt = TicketTypeFactory(capacity=10, price=Decimal("10.00"), event__capacity=100)
    event = tt.event
    rules = lock_rules_record

    held = booking_reserve(event=event, items=[LineItem(tt, 1)], email="a@example.com")
    assert locks_of(rules, lambda: booking_cancel(booking=held)) == [[EVENT, TYPE, BOOKING]]

    paid = make_booking(items=[(tt, 2)])
    # authorize (booking -> payment), then on commit the capture: confirm and the confirmation e-mail
    assert locks_of(rules, lambda: payment_authorize(booking=paid, card=card())) == [
        [BOOKING, PAYMENT], [EVENT, TYPE, BOOKING, PAYMENT], [BOOKING]]
    assert len(mail.outbox) == 1

    refund = refund_issue(booking=Booking.objects.get(pk=paid.pk), tickets=[paid.tickets.first()])
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and len(mail.outbox) == 2

    failing = make_booking(items=[(tt, 1)])
    payment_authorize(booking=failing, card=card("4000000000006660"))  # every refund of it fails
    failed = refund_issue(booking=Booking.objects.get(pk=failing.pk))
    failed.refresh_from_db()
    assert failed.status == Refund.Status.FAILED
    assert locks_of(rules, lambda: refund_retry(refund=failed))[0] == [BOOKING, PAYMENT, REFUND]

    make_booking(items=[(tt, 1)])  # a hold that lapses
    time_machine.move_to(timezone.now() + timedelta(hours=1))
    assert locks_of(rules, holds_expire) == [[EVENT, TYPE, BOOKING]]
    assert locks_of(rules, lambda: inventory_repair(event_ids=[event.pk])) == [[EVENT, TYPE]]
    payments_reconcile()

    kept = make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    tickets_release_sold(booking=kept, tickets=[kept.tickets.first()])
    make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment_authorize(booking=make_booking(items=[(tt, 1)]), card=card())
    event_cancel_and_refund(event=event)

    assert lock_rules_record.breaches == []
    assert all(tables == sorted(tables, key=lambda t: rules.ranks[t]) for tables in rules.transactions)
    assert Payment.objects.filter(status=Payment.Status.AUTHORIZED).count() == 1
    assert not Ticket.objects.filter(status=Ticket.Status.HELD, booking__status=Booking.Status.RESERVED).exists()
    assert_inventory_consistent()
