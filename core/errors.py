"""The domain error hierarchy: what services raise when a use case cannot proceed.

Each class has a stable `code` (part of the API contract), a short `title`, the
HTTP `status` the API answers with, and a human `detail`. The site shows
`detail` as a form error or message; the API turns the error into a
problem-details body (DESIGN.md section 3). Services never raise HTTP errors.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "domain_error"
    title = _("Request cannot be completed")
    status = 400
    default_detail = _("The request cannot be completed.")
    # Seconds to wait before trying again (the `Retry-After` header), for errors that pass: a class's
    # default, or the `retry_after=` of one raise (at least 1).
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, errors: dict[str, list[str]] | None = None,
                 retry_after: int | None = None, **extra: Any) -> None:
        if retry_after is not None:
            self.retry_after = max(1, int(retry_after))
        self.detail = str(detail if detail is not None else self.default_detail)
        self.errors = errors or {}
        self.extra = extra
        super().__init__(self.detail)

    @property
    def message(self) -> str:
        return self.detail

    def as_problem(self) -> dict[str, Any]:
        """The problem-details body of this error (DESIGN.md section 3)."""
        body: dict[str, Any] = {
            "type": f"about:blank#{self.code}",
            "title": str(self.title),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    """Input that breaks a rule of the model (field errors under `errors`)."""

    code = "invalid"
    title = _("Invalid input")
    status = 400
    default_detail = _("The input is not valid.")


class LimitExceeded(DomainError):
    code = "limit_exceeded"
    title = _("Limit exceeded")
    status = 400
    default_detail = _("Too many tickets in one booking.")


class BuyerLimitReached(DomainError):
    """A hoarding limit of the event (bookings.limits): this buyer or address holds enough already."""

    code = "buyer_limit_reached"
    title = _("Limit reached")
    status = 409
    default_detail = _("You cannot reserve more tickets for this event.")


class HoldLimitReached(BuyerLimitReached):
    code = "hold_limit_reached"
    title = _("Too many reservations")
    default_detail = _("You already have reservations for this event awaiting payment; "
                       "pay for or cancel one of them first.")


class TicketLimitReached(BuyerLimitReached):
    code = "ticket_limit_reached"
    title = _("Ticket limit reached")
    default_detail = _("You have reached the number of tickets one buyer may have for this event.")


class AddressHoldLimitReached(BuyerLimitReached):
    """Too many live holds from one client address; `retry_after`: seconds until the first ends."""

    code = "ip_hold_limit_reached"
    title = _("Too many reservations from your network")
    status = 429
    default_detail = _("Too many reservations for this event are awaiting payment from your network; "
                       "please try again later.")
    retry_after = 60


class NotOnSale(DomainError):
    code = "not_on_sale"
    title = _("Not on sale")
    status = 409
    default_detail = _("These tickets are not on sale.")


class EventNotPublished(NotOnSale):
    code = "event_not_published"
    title = _("Event not on sale")
    default_detail = _("This event is not on sale.")


class SalesClosed(NotOnSale):
    code = "sales_closed"
    title = _("Sales closed")
    default_detail = _("Sales for these tickets are closed.")


class SoldOut(DomainError):
    """Not enough tickets left; `available` maps ticket type ids to what is left."""

    code = "sold_out"
    title = _("Sold out")
    status = 409
    default_detail = _("Not enough tickets left.")


class HoldExpired(DomainError):
    code = "hold_expired"
    title = _("Hold expired")
    status = 409
    default_detail = _("Your reservation has expired; the tickets were released.")


class InvalidTransition(DomainError):
    code = "invalid_transition"
    title = _("Invalid state transition")
    status = 409
    default_detail = _("This action is not possible in the current state.")


class AlreadyRefunded(InvalidTransition):
    """A ticket asked for is already in a refund that is pending, succeeded or needs attention."""

    code = "already_refunded"
    title = _("Already refunded")
    default_detail = _("Some of these tickets are already refunded or being refunded.")


class CapacityConflict(DomainError):
    code = "capacity_conflict"
    title = _("Capacity conflict")
    status = 409
    default_detail = _("Capacity cannot be lower than the tickets already sold or held.")


class HasSales(DomainError):
    code = "has_sales"
    title = _("Has sales")
    status = 409
    default_detail = _("This cannot be deleted because tickets have been sold or held; "
                       "cancel it instead.")


class GuestLinkExpired(DomainError):
    """A guest link (the booking's access token) used too long after the event ended."""

    code = "guest_link_expired"
    title = _("Link expired")
    status = 410
    default_detail = _("This booking link has expired. Log in to the account that booked, or contact the "
                       "organizer.")


class RefundWindowClosed(DomainError):
    code = "refund_window_closed"
    title = _("Refunds closed")
    status = 409
    default_detail = _("Refunds can no longer be requested for this event; contact the organizer.")


class PaymentDeclined(DomainError):
    """The card was refused; `code` is the gateway's decline code."""

    code = "card_declined"
    title = _("Payment declined")
    status = 402
    default_detail = _("Your card was declined.")

    def __init__(self, detail: str | None = None, *, code: str | None = None, **kwargs: Any) -> None:
        if code:
            self.code = code
        super().__init__(detail, **kwargs)


class Busy(DomainError):
    """A scarce row stayed locked longer than the lock timeout: try again shortly."""

    code = "busy"
    title = _("Very busy")
    status = 503
    default_detail = _("We are very busy right now; please try again in a moment.")
    retry_after = 2


class PaymentUnavailable(DomainError):
    """The payment processor could not be reached; nothing was charged."""

    code = "payment_unavailable"
    title = _("Payment unavailable")
    status = 503
    default_detail = _("Payments are temporarily unavailable; nothing was charged. Please try again.")
    retry_after = 5


class TooManyDeclines(DomainError):
    """A booking had `PAYMENT_DECLINES_PER_BOOKING` declined payments: its hold is released, no more tries."""

    code = "too_many_declines"
    title = _("Too many declined payments")
    status = 409
    default_detail = _("This reservation was released after too many declined payments. "
                       "Choose your tickets again to pay with another card.")


class PaymentAttemptsExceeded(DomainError):
    """A client address had `PAYMENT_DECLINES_PER_IP_PER_HOUR` declined payments this hour: try again after
    `retry_after` seconds (card testing)."""

    code = "payment_attempts_exceeded"
    title = _("Too many declined payments")
    status = 429
    default_detail = _("Too many declined payments came from your address; nothing was charged. "
                       "Please try again later.")


class LoginLockedOut(DomainError):
    """Too many failed logins of this username from this address (django-axes): wait `retry_after` seconds."""

    code = "login_locked_out"
    title = _("Too many login attempts")
    status = 429
    default_detail = _("Logging in is blocked for a while after repeated failed attempts; please try again later.")
