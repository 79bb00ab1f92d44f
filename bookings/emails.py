"""The booking confirmation e-mail: each ticket's code and QR code, and a link to the booking."""

from __future__ import annotations

import io
import uuid
from email.mime.image import MIMEImage

import segno
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from bookings.models import Booking, Ticket
from core.mail import send_once


def booking_url(booking: Booking) -> str:
    """The booking page's absolute link, with the secret that opens it without logging in."""
    path = reverse("bookings:detail", kwargs={"pk": booking.pk})
    return f"{settings.SITE_URL.rstrip('/')}{path}?token={booking.access_token}"


def qr_png(code: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def booking_confirmation_send(*, booking_id: uuid.UUID | str, force: bool = False) -> bool:
    """Send the confirmation of a confirmed booking once (again only with `force`); True if sent.

    The booking row alone is locked for a moment to claim the message
    (`confirmation_sent_at`); the message is built and handed to the mail server
    after commit (`core.mail.send_once`), so concurrent runs send one
    message and a slow mail server holds no lock.
    """
    return send_once(model=Booking, pk=booking_id, sent_field="confirmation_sent_at", force=force,
                     ready=lambda booking: booking.status == Booking.Status.CONFIRMED, build=_confirmation)


def _confirmation(booking: Booking) -> EmailMultiAlternatives:
    event = booking.event
    tickets = list(Ticket.objects.filter(booking=booking, status=Ticket.Status.ISSUED).select_related("ticket_type"))
    context = {"booking": booking, "event": event, "tickets": tickets, "url": booking_url(booking)}
    message = EmailMultiAlternatives(
        subject=_("Your tickets for %(event)s") % {"event": event.name},
        body=render_to_string("emails/booking_confirmation.txt", context),
        to=[booking.email],
    )
    message.attach_alternative(render_to_string("emails/booking_confirmation.html", context), "text/html")
    message.mixed_subtype = "related"
    for ticket in tickets:
        image = MIMEImage(qr_png(ticket.code), "png")
        image.add_header("Content-ID", f"<qr-{ticket.code}>")
        image.add_header("Content-Disposition", "inline", filename=f"ticket-{ticket.code}.png")
        message.attach(image)
    return message
