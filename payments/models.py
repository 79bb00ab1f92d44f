import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking, Ticket


class Payment(models.Model):
    """A card payment for a booking; only brand and last 4 digits of the card are kept.

    pending -> authorized -> captured -> (partially_refunded) -> refunded;
    pending -> failed; authorized -> voided. Only payment services change `status`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        AUTHORIZED = "authorized", _("Authorized")
        CAPTURED = "captured", _("Captured")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")
        FAILED = "failed", _("Failed")
        VOIDED = "voided", _("Voided")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    booking = models.ForeignKey(
        Booking, on_delete=models.PROTECT, related_name="payments", verbose_name=_("booking")
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, editable=False
    )
    gateway_reference = models.CharField(_("gateway reference"), max_length=100, blank=True)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last4 = models.CharField(_("card last 4 digits"), max_length=4, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=50, blank=True)
    failure_message = models.CharField(_("failure message"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_gte_0"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="payment_status_updated_idx")]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.get_status_display()})"


class Refund(models.Model):
    """Money given back for some or all tickets of a captured payment.

    pending -> succeeded | failed | needs_attention. `needs_attention`: the
    gateway gave the money back but the shop could not record it (tickets,
    seats, payment not updated); someone must look. Only refund services
    change `status`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        NEEDS_ATTENTION = "needs_attention", _("Needs attention")

    class Cause(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        EVENT_CANCELLED = "event_cancelled", _("Event cancelled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    tickets = models.ManyToManyField(
        Ticket, related_name="refunds", blank=True, verbose_name=_("tickets refunded")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, editable=False
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    cause = models.CharField(
        _("cause"), max_length=20, choices=Cause.choices, default=Cause.REQUESTED, db_default=Cause.REQUESTED,
        editable=False, help_text=_("Why the refund was made: asked for, or the event was cancelled."),
    )
    gateway_reference = models.CharField(_("gateway reference"), max_length=100, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=50, blank=True)
    failure_message = models.CharField(_("failure message"), max_length=300, blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retries",
        verbose_name=_("retry of"), help_text=_("The failed refund this one tries again."),
    )
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_amount_gte_0"),
            # A cancelled event refunds each payment once, however often the cancellation is resumed
            # (a retry of a refused one is a new row with `retry_of` set).
            models.UniqueConstraint(
                fields=["payment"], condition=Q(cause="event_cancelled", retry_of__isnull=True),
                name="refund_one_cancellation_per_payment",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="refund_status_updated_idx")]

    def __str__(self) -> str:
        return f"{self.amount} ({self.get_status_display()})"


class MockCharge(models.Model):
    """The mock gateway's own record of an authorization (what a processor keeps on its side)."""

    class Status(models.TextChoices):
        AUTHORIZED = "authorized", _("Authorized")
        CAPTURED = "captured", _("Captured")
        VOIDED = "voided", _("Voided")

    reference = models.CharField(max_length=40, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    card_brand = models.CharField(max_length=20)
    card_last4 = models.CharField(max_length=4)
    behaviour = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AUTHORIZED)
    captured_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    capture_requested_at = models.DateTimeField(null=True, blank=True)
    capture_count = models.PositiveIntegerField(default=0)
    refund_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("mock gateway charge")
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=models.F("captured_amount")), name="mockcharge_refund_lte_capture"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class MockOperation(models.Model):
    """One idempotent call to the mock gateway and its recorded outcome."""

    idempotency_key = models.CharField(max_length=120, unique=True)
    operation = models.CharField(max_length=20)
    reference = models.CharField(max_length=40)
    outcome = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("mock gateway operation")

    def __str__(self) -> str:
        return self.idempotency_key
