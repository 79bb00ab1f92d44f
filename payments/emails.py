"""The refund confirmation e-mail."""

from __future__ import annotations

import uuid

from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from bookings.emails import booking_url
from core.mail import send_once
from payments.models import Refund


def refund_confirmation_send(*, refund_id: uuid.UUID | str) -> bool:
    """Tell the buyer a refund succeeded, once; True if sent.

    The refund row alone is locked for a moment to claim the message
    (`notified_at`); the message is built and handed to the mail server after
    commit (`core.mail.send_once`): no booking, event or refund stays
    locked while the mail server works.
    """
    return send_once(model=Refund, pk=refund_id, sent_field="notified_at",
                     ready=lambda refund: refund.status == Refund.Status.SUCCEEDED, build=_confirmation)


def _confirmation(refund: Refund) -> EmailMessage:
    refund = Refund.objects.select_related("payment__booking__event").get(pk=refund.pk)
    booking = refund.payment.booking
    context = {"refund": refund, "booking": booking, "event": booking.event,
               "tickets": list(refund.tickets.select_related("ticket_type")), "url": booking_url(booking)}
    return EmailMessage(
        subject=_("Your refund for %(event)s") % {"event": booking.event.name},
        body=render_to_string("emails/refund_confirmation.txt", context),
        to=[booking.email],
    )
