import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from events.models import Event, TicketType


def new_access_token() -> str:
    """A secret for guest links to a booking (256 bits)."""
    return secrets.token_urlsafe(32)


def new_ticket_code() -> str:
    """An unguessable ticket code: 160 random bits in base32 (QR alphanumeric mode)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


# Booking statuses whose tickets count against a buyer's limit: held or issued (bookings.limits).
LIVE_STATUSES = ["reserved", "processing", "confirmed"]


class Booking(models.Model):
    """One buyer's purchase of tickets of one event (DESIGN.md section 5).

    Only the services in `bookings.services` change `status`, under a row lock.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved", _("Reserved")
        PROCESSING = "processing", _("Processing payment")
        CONFIRMED = "confirmed", _("Confirmed")
        REFUNDED = "refunded", _("Refunded")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    # Statuses whose tickets still count against capacity as held.
    HOLDING = (Status.RESERVED, Status.PROCESSING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own: the indexes of Meta lead with them (fewer index writes per booking).
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("event"), db_index=False
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="bookings", verbose_name=_("buyer"), db_index=False,
    )
    email = models.EmailField(_("e-mail"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RESERVED, editable=False
    )
    expires_at = models.DateTimeField(_("hold expires at"))
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    access_token = models.CharField(max_length=64, default=new_access_token, editable=False)  # unique: Meta
    # Where the reservation came from, for the hoarding limit per address (bookings.limits): the
    # client's IPv4 address, or the /64 network of an IPv6 one. Empty when no door gave one.
    client_ip = models.GenericIPAddressField(_("client IP address"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text=_("When the hold ended without a sale (expired or cancelled)."),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="booking_total_gte_0"),
            # A constraint rather than unique=True: only exact lookups, so no second (LIKE) index.
            models.UniqueConstraint(fields=["access_token"], name="booking_access_token_unique"),
        ]
        indexes = [
            # The expiry sweep: reserved bookings past their deadline, oldest first.
            models.Index(
                fields=["expires_at"], condition=Q(status="reserved"), name="booking_reserved_expiry_idx"
            ),
            models.Index(fields=["buyer", "-created_at"], name="booking_buyer_created_idx"),
            # An event's bookings by status; with the expiry, a reservation's look for lapsed holds
            # of its event is a range scan, however many live holds the event has.
            models.Index(fields=["event", "status", "expires_at"], name="booking_event_status_exp_idx"),
            # The hoarding limits (bookings.limits): a guest's live bookings of an event by e-mail (an
            # account's are found through booking_buyer_created_idx), and an address's live holds of
            # an event. Partial, so they stay small: a reservation from a known address adds one
            # index entry for an account, two for a guest (one fewer without an address).
            models.Index(Lower("email"), F("event"), name="booking_guest_email_event_idx",
                         condition=Q(buyer__isnull=True, status__in=LIVE_STATUSES)),
            models.Index(fields=["client_ip", "event", "expires_at"], name="booking_ip_holds_idx",
                         condition=Q(client_ip__isnull=False, status="reserved")),
        ]

    def __str__(self) -> str:
        return f"{str(self.pk)[:8]} – {self.email}"

    def get_absolute_url(self) -> str:
        return reverse("bookings:detail", kwargs={"pk": self.pk})

    @property
    def reference(self) -> str:
        """The booking's short reference for people (pages, tickets, e-mails): "3F2A9C1B"."""
        return self.pk.hex[:8].upper()


class Ticket(models.Model):
    """One seat of a ticket type in a booking.

    held -> issued (booking confirmed) -> refunded; held -> released (hold ended).
    """

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        ISSUED = "issued", _("Issued")
        RELEASED = "released", _("Released")
        REFUNDED = "refunded", _("Refunded")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    booking = models.ForeignKey(
        Booking, on_delete=models.CASCADE, related_name="tickets", verbose_name=_("booking")
    )
    ticket_type = models.ForeignKey(  # no index of its own: ticket_type_status_idx leads with it
        TicketType, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("ticket type"),
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.HELD, editable=False
    )
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    attendee_name = models.CharField(_("attendee name"), max_length=200, blank=True)
    code = models.CharField(_("code"), max_length=64, default=new_ticket_code, editable=False)  # unique: Meta
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["ticket_type__position", "id"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="ticket_price_gte_0"),
            models.UniqueConstraint(fields=["code"], name="ticket_code_unique"),  # exact lookups only
        ]
        indexes = [
            # Counter checks and reclaiming holds: tickets of a type by status.
            models.Index(fields=["ticket_type", "status"], name="ticket_type_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_type.name} {self.code[:8]}"
