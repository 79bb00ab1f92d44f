"""Booking pages: thin views over bookings.selectors."""

import segno
from django.http import Http404
from django.views.generic import TemplateView

from bookings.models import Ticket
from bookings.selectors import booking_get_visible


class BookingDetailView(TemplateView):
    """A booking for its buyer, its organizer, or anyone with the secret link (`?token=`)."""

    template_name = "bookings/booking_detail.html"

    def get_context_data(self, **kwargs):
        booking = booking_get_visible(booking_id=kwargs["pk"], user=self.request.user,
                                      token=self.request.GET.get("token"))
        if booking is None:
            raise Http404
        tickets = list(booking.tickets.all())
        for ticket in tickets:
            ticket.qr_svg = (
                segno.make(ticket.code, error="m").svg_inline(scale=4, title=ticket.code)
                if ticket.status == Ticket.Status.ISSUED else ""
            )
        return {**super().get_context_data(**kwargs), "booking": booking, "event": booking.event,
                "tickets": tickets}
