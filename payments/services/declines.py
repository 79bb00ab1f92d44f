"""Bounds on card testing: declines per booking and per client address per clock hour."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import ngettext

from bookings.models import Booking
from bookings.services import booking_cancel
from core.errors import Busy, InvalidTransition, PaymentAttemptsExceeded
from payments.models import Payment

logger = logging.getLogger(__name__)

# Failed payments that are no decline of the card: they count against no limit.
_NOT_DECLINES = ("gateway_unavailable", "abandoned")


def _declines_left(booking: Booking) -> int:
    """How many more declined payments the booking may have before its hold is released."""
    limit = settings.PAYMENT_DECLINES_PER_BOOKING
    if limit <= 0:
        return 1
    declined = (Payment.objects.filter(booking_id=booking.pk, status=Payment.Status.FAILED)
                .exclude(failure_code__in=_NOT_DECLINES).count())
    return limit - declined


def _release_declined_hold(booking: Booking) -> None:
    """Release the hold of a booking out of declines, through the service every cancellation uses."""
    try:
        booking_cancel(booking=booking)
    except InvalidTransition:
        pass  # no longer held: expired, cancelled, or paid meanwhile
    except Busy:
        logger.warning("booking %s is out of declines but its rows are busy; the next attempt releases it",
                       booking.pk)


def _ip_decline_take(client_ip: str | None) -> str | None:
    """Take one of the address's declines of this clock hour, or raise `PaymentAttemptsExceeded`.

    An atomic cache increment, so concurrent attempts cannot all pass one check; an attempt
    that is not declined gives its share back. Returns the counter's key (None: not counted).
    """
    limit = settings.PAYMENT_DECLINES_PER_IP_PER_HOUR
    if not client_ip or limit <= 0:
        return None
    now = int(timezone.now().timestamp())
    key = f"payments:declines:{client_ip}:{now // 3600}"
    cache.add(key, 0, timeout=2 * 3600)
    try:
        taken = cache.incr(key)
    except ValueError:  # the entry expired between add and incr
        cache.set(key, 1, timeout=2 * 3600)
        taken = 1
    if taken > limit:
        _ip_decline_give_back(key)
        retry_after = 3600 - now % 3600
        minutes = (retry_after + 59) // 60
        raise PaymentAttemptsExceeded(
            ngettext("Too many declined payments came from your address this hour; nothing was charged. "
                     "Please try again in %(minutes)d minute.",
                     "Too many declined payments came from your address this hour; nothing was charged. "
                     "Please try again in %(minutes)d minutes.", minutes) % {"minutes": minutes},
            retry_after=retry_after,
        )
    return key


def _ip_decline_give_back(key: str | None) -> None:
    if key is not None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
            cache.decr(key)
