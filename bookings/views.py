"""Booking pages: reserve, cancel, tickets and "My bookings"; thin views over the bookings services.

The booking page itself, with its card form and refund button, spans the
payments app and lives in `payments.views`. A guest opens a booking with its
secret link (`?token=`); every link and form on these pages keeps the token.
"""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.generic import ListView, View

from bookings.forms import ReserveForm
from bookings.models import Booking, Ticket
from bookings.permissions import may_cancel_booking
from bookings.selectors import (
    BookingAccess,
    booking_get_access,
    booking_hold_expired,
    booking_items,
    booking_lists_for_buyer,
)
from bookings.services import booking_cancel, booking_reserve
from core.api import BookingsThrottle
from core.client_ip import client_ip
from core.errors import Busy, DomainError, GuestLinkExpired, SoldOut
from core.site import busy_response, form_add_domain_error, throttled_response, token_query
from events.views import ReservePanel, asks_email, quantity_values, reserve_panel_stash, visible_event_or_404


def booking_access_for_request(request: HttpRequest, pk) -> tuple[BookingAccess, str | None]:
    """How the caller reaches the booking (owner, organizer staff, or `?token=`), else 404;
    `GuestLinkExpired` for a guest link past its time (`GuestLinkPageMixin` answers it)."""
    token = request.GET.get("token") or None
    access = booking_get_access(booking_id=pk, user=request.user, token=token)
    if access is None:
        raise Http404
    return access, token


def booking_for_request(request: HttpRequest, pk) -> tuple[Booking, str | None]:
    """The booking if the caller may see it (owner, organizer member, or `?token=`), else 404."""
    access, token = booking_access_for_request(request, pk)
    return access.booking, token


class GuestLinkPageMixin:
    """Pages of one booking: a guest link used too long after the event says it expired (410)."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except GuestLinkExpired as exc:
            context = {"detail": exc.detail, "settings_days": settings.GUEST_LINK_VALID_DAYS_AFTER_EVENT}
            return render(request, "bookings/link_expired.html", context, status=exc.status)


def booking_url(booking: Booking, token: str | None = None, name: str = "bookings:detail", **kwargs) -> str:
    return reverse(name, kwargs={"pk": booking.pk, **kwargs}) + token_query(token)


def ticket_qr_svg(ticket: Ticket) -> str:
    """The ticket's code as an inline SVG QR code that scales with CSS (viewBox, no fixed size)."""
    return segno.make(ticket.code, error="m").svg_inline(
        scale=4, border=2, omitsize=True, svgclass="qr", light="#fff",
        title=_("QR code of ticket %(code)s") % {"code": ticket.code},
    )


def buyer_name(booking: Booking) -> str:
    """Who bought the booking, for its tickets: the account's full name (else its username), or a
    guest's e-mail address (a guest gives no name)."""
    if booking.buyer is not None:
        return booking.buyer.get_full_name() or booking.buyer.get_username()
    return booking.email


class BookingReserveView(View):
    """The event page's form: hold the chosen tickets, then go to the booking page to pay."""

    http_method_names = ["post"]

    def post(self, request, event_pk):
        if (refused := throttled_response(request, BookingsThrottle)) is not None:
            return refused
        event = visible_event_or_404(request, event_pk)
        ask_email = asks_email(request)
        form = ReserveForm(request.POST, ticket_types=list(event.ticket_types.all()), ask_email=ask_email)
        left = {}
        if form.is_valid():
            try:
                booking = booking_reserve(event=event, items=form.line_items(),
                                          email=form.cleaned_data.get("email", ""), buyer=request.user,
                                          client_ip=client_ip(request) or None)
            except Busy as exc:
                return busy_response(request, exc)
            except DomainError as exc:
                form_add_domain_error(form, exc)
                if isinstance(exc, SoldOut):
                    left = exc.extra.get("available", {})
            else:
                # A guest comes back with the secret link; a logged-in buyer owns the booking.
                token = None if booking.buyer_id else booking.access_token
                return redirect(booking_url(booking, token))
        # Post/Redirect/Get: the event page shows the errors and keeps the quantities and e-mail
        # address; reloading it does not send the form again.
        reserve_panel_stash(request, event, ReservePanel(
            ask_email=ask_email,
            email=request.POST.get("email", "")[:254],
            email_errors=list(form.errors.get("email", [])),
            errors=list(form.non_field_errors()),
            values=quantity_values(request.POST),
            row_errors=form.quantity_errors(),
            left=left,
        ))
        return redirect(f"{event.get_absolute_url()}#tickets-heading")


class BookingActionView(GuestLinkPageMixin, View):
    """A buyer's button on the booking page (POST): run `action`, say how it went, back to the booking.

    `may(user, access)` (`bookings.permissions`): who may press it; anyone else reaching the
    booking (organizer staff without the permission) gets 403.
    """

    http_method_names = ["post"]
    done_message = ""
    may = None

    def action(self, booking: Booking):
        raise NotImplementedError

    def report(self, request, booking: Booking, result) -> None:
        """Say how it went (after `action` returned `result`)."""
        messages.success(request, self.done_message)

    def post(self, request, pk):
        access, token = booking_access_for_request(request, pk)
        if self.may is not None and not self.may(request.user, access):
            raise PermissionDenied
        booking = access.booking
        try:
            result = self.action(booking)
        except Busy as exc:
            return busy_response(request, exc)
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            self.report(request, booking, result)
        return redirect(booking_url(booking, token))


class BookingCancelView(BookingActionView):
    """Give up a hold: the tickets go back on sale at once.

    GET asks first ("Cancel this reservation? Yes, cancel / Keep it", no JavaScript needed);
    the POST of that page cancels.
    """

    http_method_names = ["get", "post"]
    done_message = _lazy("Your reservation was cancelled and the tickets were released.")
    may = staticmethod(may_cancel_booking)

    def get(self, request, pk):
        access, token = booking_access_for_request(request, pk)
        if not self.may(request.user, access):
            raise PermissionDenied
        booking = access.booking
        if booking.status != Booking.Status.RESERVED or booking_hold_expired(booking, now=timezone.now()):
            return redirect(booking_url(booking, token))  # nothing to cancel: the booking page says why
        return render(request, "bookings/booking_cancel.html", {
            "booking": booking, "event": booking.event, "items": booking_items(booking),
            "token_qs": token_query(token),
        })

    def action(self, booking: Booking) -> None:
        booking_cancel(booking=booking)


class TicketDetailView(GuestLinkPageMixin, View):
    """One ticket, printable: event, date in the event's time zone, venue, type, code and QR code,
    with the buyer's name, the booking reference and its place in the booking ("1 of 2").

    The page served is `payments.views.TicketDetailView`, which adds the ticket's refund state
    (`ticket_context`): bookings cannot read refunds.
    """

    def ticket_context(self, booking: Booking, ticket: Ticket) -> dict:
        """More for the template; `being_refunded` True hides the QR code."""
        return {}

    def get(self, request, pk, ticket_pk):
        booking, token = booking_for_request(request, pk)
        tickets = list(booking.tickets.all())
        position = next((n for n, t in enumerate(tickets, start=1) if t.pk == ticket_pk), None)
        if position is None:
            raise Http404
        ticket = tickets[position - 1]
        extra = self.ticket_context(booking, ticket)
        usable = ticket.status == Ticket.Status.ISSUED and not extra.get("being_refunded")
        qr_svg = ticket_qr_svg(ticket) if usable else ""
        return render(request, "bookings/ticket_detail.html", {
            "booking": booking, "event": booking.event, "ticket": ticket, "qr_svg": qr_svg,
            "position": position, "count": len(tickets), "buyer_name": buyer_name(booking),
            "token_qs": token_query(token), **extra,
        })


class MyBookingsView(LoginRequiredMixin, ListView):
    """The logged-in buyer's bookings: upcoming (event not ended yet, soonest first), then past
    (paginated, latest first); each with its reference, ticket count, event date and status."""

    template_name = "bookings/booking_list.html"
    context_object_name = "past"
    paginate_by = 10

    def get_queryset(self):
        self.lists = booking_lists_for_buyer(user=self.request.user)
        return self.lists.past

    def get_context_data(self, **kwargs):
        return super().get_context_data(upcoming=self.lists.upcoming, upcoming_more=self.lists.upcoming_more,
                                        **kwargs)
