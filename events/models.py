import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.currencies import CURRENCY_CHOICES, validate_currency, validate_price


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value}, code="invalid")


# An active ISO 4217 code (core.currencies); the field offers them as choices.
currency_validator = validate_currency


class Organizer(models.Model):
    """Who runs events; its members manage only its events (admin and API)."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="organizers", blank=True, verbose_name=_("members")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organizer")
        verbose_name_plural = _("organizers")

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """An event with one or more ticket types.

    `capacity` is the optional venue cap across all ticket types. While it is
    set, `sold` and `held` count the event's tickets (the sums over its types)
    and reservations lock this row first; while it is unset they stay 0 and the
    event row is never locked, so ticket types of one event do not contend.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CANCELLED = "cancelled", _("Cancelled")

    class Category(models.TextChoices):
        MUSIC = "music", _("Music")
        THEATRE = "theatre", _("Theatre")
        SPORTS = "sports", _("Sports")
        COMEDY = "comedy", _("Comedy")
        CONFERENCE = "conference", _("Conference")
        FESTIVAL = "festival", _("Festival")
        FAMILY = "family", _("Family")
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organizer = models.ForeignKey(
        Organizer, on_delete=models.PROTECT, related_name="events", verbose_name=_("organizer")
    )
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    venue = models.CharField(_("venue"), max_length=200)
    city = models.CharField(_("city"), max_length=100)
    category = models.CharField(
        _("category"), max_length=20, choices=Category.choices, default=Category.OTHER
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    currency = models.CharField(
        _("currency"), max_length=3, default="EUR", choices=CURRENCY_CHOICES, validators=[currency_validator]
    )
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True,
        help_text=_("Optional venue limit across all ticket types."),
    )
    sold = models.IntegerField(_("sold"), default=0, editable=False)
    held = models.IntegerField(_("held"), default=0, editable=False)
    # The organizer's own hoarding limits (bookings.limits); empty: the site's defaults
    # (BOOKING_MAX_HOLDS_PER_BUYER, ...), 0: no limit for this event. Nullable, so older code
    # that does not know them still inserts.
    max_holds_per_buyer = models.PositiveIntegerField(
        _("active holds per buyer"), null=True, blank=True,
        help_text=_("Reservations awaiting payment one buyer (account or guest e-mail) may have at once. "
                    "Empty: the site's default; 0: no limit."),
    )
    max_holds_per_ip = models.PositiveIntegerField(
        _("active holds per IP address"), null=True, blank=True,
        help_text=_("Reservations awaiting payment made from one IP address at once. "
                    "Empty: the site's default; 0: no limit."),
    )
    max_tickets_per_buyer = models.PositiveIntegerField(
        _("tickets per buyer"), null=True, blank=True,
        help_text=_("Tickets one buyer may hold or have bought for this event, over all their bookings. "
                    "Empty: the site's default; 0: no limit."),
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "name"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.CheckConstraint(condition=Q(sold__gte=0), name="event_sold_gte_0"),
            models.CheckConstraint(condition=Q(held__gte=0), name="event_held_gte_0"),
            models.CheckConstraint(
                condition=Q(capacity__isnull=True) | Q(capacity__gte=F("sold") + F("held")),
                name="event_sold_held_lte_capacity",
            ),
            models.CheckConstraint(condition=Q(ends_at__gte=F("starts_at")), name="event_ends_after_start"),
            models.UniqueConstraint(fields=["organizer", "slug"], name="event_unique_slug_per_organizer"),
        ]
        indexes = [
            # The catalogue: published events by date, filtered by city or category.
            models.Index(fields=["status", "starts_at"], name="event_status_starts_idx"),
            models.Index(fields=["city", "starts_at"], name="event_city_starts_idx"),
            models.Index(fields=["category", "starts_at"], name="event_category_starts_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("events:detail", kwargs={"pk": self.pk, "slug": self.slug})

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValidationError({"ends_at": _("The event cannot end before it starts.")})

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED


class TicketType(models.Model):
    """A kind of ticket for an event, with its own price and capacity.

    `sold` and `held` are counters kept by the booking services under this
    row's lock; they always equal the number of its tickets `issued` and `held`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="ticket_types", verbose_name=_("event")
    )
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    price = models.DecimalField(
        _("price"), max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )
    capacity = models.PositiveIntegerField(_("capacity"))
    sold = models.IntegerField(_("sold"), default=0, editable=False)
    held = models.IntegerField(_("held"), default=0, editable=False)
    max_per_booking = models.PositiveSmallIntegerField(
        _("max per booking"), default=10, validators=[MinValueValidator(1)]
    )
    sales_start = models.DateTimeField(_("sales start"), null=True, blank=True)
    sales_end = models.DateTimeField(
        _("sales end"), null=True, blank=True,
        help_text=_("Empty: sales close when the event starts."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "price", "name"]
        verbose_name = _("ticket type")
        verbose_name_plural = _("ticket types")
        constraints = [
            models.CheckConstraint(condition=Q(sold__gte=0), name="tickettype_sold_gte_0"),
            models.CheckConstraint(condition=Q(held__gte=0), name="tickettype_held_gte_0"),
            models.CheckConstraint(
                condition=Q(capacity__gte=F("sold") + F("held")),
                name="tickettype_sold_held_lte_capacity",
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="tickettype_price_gte_0"),
            models.CheckConstraint(
                condition=Q(max_per_booking__gte=1), name="tickettype_max_per_booking_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(sales_start__isnull=True) | Q(sales_end__isnull=True)
                | Q(sales_end__gt=F("sales_start")),
                name="tickettype_sales_window_ordered",
            ),
            models.UniqueConstraint(fields=["event", "name"], name="tickettype_unique_name_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event} – {self.name}"

    def clean(self) -> None:
        if self.sales_start and self.sales_end and self.sales_end <= self.sales_start:
            raise ValidationError({"sales_end": _("Sales must end after they start.")})
        if self.price is not None and self.event_id is not None:
            # The price has no more decimal places than the event's currency (JPY: none).
            try:
                validate_price(self.price, self.event.currency)
            except ValidationError as error:
                raise ValidationError({"price": error}) from None
