"""The refund confirmation e-mail."""

from __future__ import annotations

import uuid

from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.emails import booking_url
from payments.models import Refund


def refund_confirmation_send(*, refund_id: uuid.UUID | str) -> bool:
    """Tell the buyer a refund succeeded, once; True if sent (the refund row is locked meanwhile)."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment__booking__event").get(pk=refund_id)
        if refund.status != Refund.Status.SUCCEEDED or refund.notified_at:
            return False
        booking = refund.payment.booking
        context = {"refund": refund, "booking": booking, "event": booking.event,
                   "tickets": list(refund.tickets.select_related("ticket_type")), "url": booking_url(booking)}
        send_mail(
            subject=_("Your refund for %(event)s") % {"event": booking.event.name},
            message=render_to_string("emails/refund_confirmation.txt", context),
            from_email=None,
            recipient_list=[booking.email],
        )
        Refund.objects.filter(pk=refund.pk).update(notified_at=timezone.now())
    return True
