"""The booking page (checkout): card form, payment progress, tickets and refunds.

It lives in the payments app because it spans both (CONVENTIONS: a use case
lives in the highest app it touches); its URLs keep the `bookings:` names
(ticketing/urls.py). Views call `payment_authorize` and `refund_issue` and
map their domain errors to the form or a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import View

from bookings.models import Booking, Ticket
from bookings.permissions import may_cancel_booking, may_refund_booking
from bookings.selectors import BookingAccess, booking_hold_expired, booking_items
from bookings.views import BookingActionView, GuestLinkPageMixin, booking_access_for_request, booking_url, ticket_qr_svg
from bookings.views import TicketDetailView as BookingsTicketDetailView
from core.api import PayThrottle
from core.client_ip import client_ip
from core.errors import (
    AlreadyRefunded,
    Busy,
    DomainError,
    HoldExpired,
    InvalidTransition,
    PaymentAttemptsExceeded,
    TooManyDeclines,
)
from core.site import busy_response, form_add_domain_error, throttled_response, token_query
from payments.forms import PaymentForm
from payments.models import Payment, Refund
from payments.selectors import (
    REFUND_FAILED,
    REFUND_NEEDS_ATTENTION,
    REFUND_PENDING,
    BookingRefundState,
    booking_refund_state,
)
from payments.services import payment_authorize, refund_issue

# What the buyer is told about a refund, on the booking page and after asking for one.
REFUND_PENDING_TEXT = _lazy("Your refund has been requested; the money goes back to your card.")
REFUND_FAILED_TEXT = _lazy("The refund did not go through; the organizer has been told. "
                           "Your tickets stay valid until it is sorted out.")
REFUND_ATTENTION_TEXT = _lazy("Your refund was sent to your card but could not be recorded here; "
                              "the organizer has been told and will check it.")


def booking_page_context(booking: Booking, token: str | None, *, pay_form: PaymentForm | None = None,
                         may_cancel: bool = True, may_refund: bool = True) -> dict:
    now = timezone.now()
    expired = booking_hold_expired(booking, now=now)
    payable = booking.status == Booking.Status.RESERVED and not expired
    refund_state = booking_refund_state(booking)
    tickets = list(booking.tickets.all())
    for ticket in tickets:
        # A ticket being refunded is not to be used: no QR code (it comes back if the refund fails).
        ticket.being_refunded = ticket.pk in refund_state.being_refunded
        usable = ticket.status == Ticket.Status.ISSUED and not ticket.being_refunded
        ticket.qr_svg = ticket_qr_svg(ticket) if usable else ""
    payments = list(booking.payments.all())
    return {
        "booking": booking,
        "event": booking.event,
        "items": booking_items(booking),
        "tickets": tickets,
        "hold_expired": expired,
        "payable": payable,
        "seconds_left": max(0, int((booking.expires_at - now).total_seconds())) if payable else 0,
        "pay_form": (pay_form or PaymentForm()) if payable else None,
        "payment": next((p for p in payments if p.status != Payment.Status.FAILED), None),
        "failed_payment": payments[0] if payments and payments[0].status == Payment.Status.FAILED else None,
        "refunds": list(Refund.objects.filter(payment__booking=booking).order_by("-created_at")),
        "token": token or "",
        "token_qs": token_query(token),
        "may_cancel": may_cancel,
        "may_refund": may_refund and refund_state.may_request,
        "refund_state": refund_state,
        "refund_state_text": refund_state_text(refund_state),
    }


def access_page_context(request, access: BookingAccess, token: str | None, **kwargs) -> dict:
    """The booking page's context, with the buttons the caller may press (`bookings.permissions`)."""
    return booking_page_context(access.booking, token, may_cancel=may_cancel_booking(request.user, access),
                                may_refund=may_refund_booking(request.user, access), **kwargs)


def _pay_form_key(booking: Booking) -> str:
    return f"pay-form:{booking.pk}"


class BookingDetailView(GuestLinkPageMixin, View):
    """A booking for its buyer, its organizer, or anyone with the secret link (`?token=`).

    After a refused payment it shows the card form's errors once (kept in the session by
    `BookingPayView`, with the name on the card but never the card's number, expiry or CVC).
    """

    def get(self, request, pk):
        access, token = booking_access_for_request(request, pk)
        stash = request.session.pop(_pay_form_key(access.booking), None)
        pay_form = PaymentForm.from_stash(stash) if isinstance(stash, dict) else None
        return render(request, "bookings/booking_detail.html",
                      access_page_context(request, access, token, pay_form=pay_form))


@method_decorator(sensitive_post_parameters("card_number", "cvc", "expiry"), name="dispatch")
class BookingPayView(GuestLinkPageMixin, View):
    """The card form: authorize now (declines shown at once, the hold stays), capture in the background.

    Post/Redirect/Get: every answer but "busy" and "too many attempts" is a redirect to the
    booking page, so reloading it never sends the card again; a refused card's errors are kept
    in the session for that page.
    """

    http_method_names = ["post"]

    def post(self, request, pk):
        if (refused := throttled_response(request, PayThrottle)) is not None:
            return refused
        access, token = booking_access_for_request(request, pk)
        booking = access.booking
        form = PaymentForm(request.POST)
        if form.is_valid():
            try:
                payment_authorize(booking=booking, card=form.card(), client_ip=client_ip(request))
            except Busy as exc:
                return busy_response(request, exc)
            except (HoldExpired, InvalidTransition, TooManyDeclines) as exc:
                messages.error(request, exc.detail)
                return redirect(booking_url(booking, token))
            except PaymentAttemptsExceeded as exc:  # card testing from this address: the hold stays
                form_add_domain_error(form, exc)
                response = render(request, "bookings/booking_detail.html",
                                  access_page_context(request, access, token, pay_form=form), status=429)
                response["Retry-After"] = str(exc.retry_after)
                return response
            except DomainError as exc:  # declined, invalid card, processor unreachable
                form_add_domain_error(form, exc)
            else:
                return redirect(booking_url(booking, token))
        request.session[_pay_form_key(booking)] = form.stash()
        return redirect(booking_url(booking, token))


class BookingRefundView(BookingActionView):
    """The buyer asks for their money back (every issued ticket); the refund itself is queued.

    Offered only when no refund is on its way, refused or being checked (`booking_refund_state`),
    so a second press (a stale page, a refresh) is refused with what is going on. The message
    afterwards says how the refund stands: queued, done, or refused by the gateway (the task may
    have run before the redirect).
    """

    done_message = REFUND_PENDING_TEXT
    may = staticmethod(may_refund_booking)

    def action(self, booking: Booking) -> Refund:
        state = booking_refund_state(booking)
        if not state.may_request:
            raise AlreadyRefunded(str(refund_state_text(state)))
        refund = refund_issue(booking=booking, by_buyer=True, reason=_("Requested by the buyer"))
        refund.refresh_from_db()
        return refund

    def report(self, request, booking: Booking, result: Refund) -> None:
        if result.status == Refund.Status.FAILED:
            messages.error(request, REFUND_FAILED_TEXT)
        elif result.status == Refund.Status.NEEDS_ATTENTION:
            messages.warning(request, REFUND_ATTENTION_TEXT)
        else:  # pending, or succeeded already (the task ran before this answer)
            messages.success(request, REFUND_PENDING_TEXT)


def refund_state_text(state: BookingRefundState) -> str:
    """What the booking page says about a refund that is not settled; empty when there is none."""
    return {
        REFUND_PENDING: _("Refund pending: your tickets are being refunded. They stop being valid "
                          "and the money goes back to your card once the payment processor confirms it."),
        REFUND_FAILED: REFUND_FAILED_TEXT,
        REFUND_NEEDS_ATTENTION: REFUND_ATTENTION_TEXT,
    }.get(state.state, "")


class TicketDetailView(BookingsTicketDetailView):
    """The ticket page, which says when the ticket is being refunded (its QR code hidden meanwhile)."""

    def ticket_context(self, booking: Booking, ticket: Ticket) -> dict:
        state = booking_refund_state(booking)
        return {"being_refunded": ticket.pk in state.being_refunded, "refund_state": state}
