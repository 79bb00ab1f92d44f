"""API door of payments: pay a booking, refund it, cancel an event with its refunds, read payments and refunds."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from bookings.api import (
    LOGIN_OR_TOKEN,
    TOKEN_PARAM,
    BookingPermission,
    IsAuthenticatedOrHasToken,
    booking_access_of,
    visible_booking,
)
from bookings.permissions import may_refund_booking, refund_by_organizer
from core.api import PayThrottle, Rendered, ScopedThrottleMixin, StrictInput, validated
from core.api_schema import DECLINED, GUEST_LINK_EXPIRED, READ_ERRORS, WRITE_ERRORS, ProblemSerializer
from core.client_ip import client_ip
from core.idempotency import idempotent
from events.api import EventDetailOutput, EventScopedApi
from events.permissions import can_cancel_event
from payments.gateway import CARD_NUMBER_PATTERN, CVC_PATTERN, Card
from payments.models import Payment, Refund
from payments.services import event_cancel_and_refund, payment_authorize, refund_issue


class PaymentOutput(Rendered, serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "booking", "status", "amount", "currency", "card_brand", "card_last4",
                  "failure_code", "failure_message", "created_at", "updated_at"]


class RefundOutput(Rendered, serializers.ModelSerializer):
    tickets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Refund
        fields = ["id", "payment", "status", "amount", "tickets", "reason", "failure_code", "failure_message",
                  "retry_of", "created_at", "updated_at"]


class PayInput(StrictInput):
    card_number = serializers.RegexField(CARD_NUMBER_PATTERN,
                                         help_text="12 to 19 digits; a space or hyphen may separate two of them.")
    exp_month = serializers.IntegerField(min_value=1, max_value=12)
    exp_year = serializers.IntegerField(min_value=2000, max_value=2100)
    cvc = serializers.RegexField(CVC_PATTERN, help_text="The 3 or 4 digits on the back of the card.")
    cardholder_name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class RefundInput(StrictInput):
    tickets = serializers.ListField(child=serializers.UUIDField(), required=False, allow_empty=False, max_length=1000)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


PAY_EXAMPLE = OpenApiExample(
    "Test card", request_only=True,
    value={"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123",
           "cardholder_name": "Ada Lovelace"},
)


PAY_CONFLICT = OpenApiResponse(ProblemSerializer, description=(
    "Not payable: `hold_expired`, `invalid_transition`, or `too_many_declines` (the hold was released after "
    "`PAYMENT_DECLINES_PER_BOOKING` declined payments)"))
PAY_LIMITED = OpenApiResponse(ProblemSerializer, description=(
    "Too many requests (`throttled`), or `payment_attempts_exceeded`: `PAYMENT_DECLINES_PER_IP_PER_HOUR` "
    "declined payments from this address this hour; see Retry-After"))


@method_decorator(sensitive_post_parameters("card_number", "cvc", "exp_month", "exp_year"), name="dispatch")
class BookingPayApi(ScopedThrottleMixin, GenericAPIView):
    # Whoever reaches the hold may pay it: paying is no organizer write (the admin has no such action).
    permission_classes = [IsAuthenticatedOrHasToken, BookingPermission]
    extra_throttles = (PayThrottle,)

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN, request=PayInput, examples=[PAY_EXAMPLE],
                   responses={202: PaymentOutput, 402: DECLINED, **WRITE_ERRORS, 409: PAY_CONFLICT,
                              410: GUEST_LINK_EXPIRED, 429: PAY_LIMITED},
                   summary="Pay by card: authorized now (402 if declined), captured by a worker")
    @idempotent(atomic=False)
    @sensitive_variables("data", "card")
    def post(self, request, pk):
        booking = visible_booking(request, pk)
        data = validated(PayInput, request.data)
        card = Card(number=data["card_number"], exp_month=data["exp_month"],
                    exp_year=data["exp_year"], cvc=data["cvc"],
                    holder_name=data.get("cardholder_name", ""))
        payment = payment_authorize(booking=booking, card=card, client_ip=client_ip(request))
        return Response(PaymentOutput.render(payment), status=status.HTTP_202_ACCEPTED)


class BookingRefundApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrHasToken, BookingPermission]
    extra_throttles = (PayThrottle,)
    booking_check = staticmethod(may_refund_booking)

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN, request=RefundInput,
                   responses={202: RefundOutput, **WRITE_ERRORS, 410: GUEST_LINK_EXPIRED},
                   summary="Refund a confirmed booking (all issued tickets, or those listed); processed by a worker. "
                           "The buyer until the refund cutoff; organizer staff who may refund bookings at any time")
    @idempotent()
    def post(self, request, pk):
        access = booking_access_of(request, pk)
        data = validated(RefundInput, request.data)
        refund = refund_issue(
            booking=access.booking, tickets=data.get("tickets"),
            reason=data.get("reason", ""),
            by_buyer=not refund_by_organizer(request.user, access),
        )
        refund.refresh_from_db()
        return Response(RefundOutput.render(refund), status=status.HTTP_202_ACCEPTED)


class EventCancelApi(EventScopedApi):
    organizer_checks = {"POST": can_cancel_event}

    @extend_schema(request=None, responses={200: EventDetailOutput, **WRITE_ERRORS},
                   summary="Cancel an event: holds released, every confirmed booking refunded (queued)")
    @idempotent()
    def post(self, request, pk):
        event = self.event()
        event_cancel_and_refund(event=event)
        event.refresh_from_db()
        return Response(EventDetailOutput.render(event))


class PaymentDetailApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrHasToken]

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN,
                   responses={200: PaymentOutput, **READ_ERRORS, 410: GUEST_LINK_EXPIRED},
                   summary="A payment")
    def get(self, request, pk):
        payment = get_object_or_404(Payment, pk=pk)
        visible_booking(request, payment.booking_id)
        return Response(PaymentOutput.render(payment))


class RefundDetailApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrHasToken]

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN,
                   responses={200: RefundOutput, **READ_ERRORS, 410: GUEST_LINK_EXPIRED},
                   summary="A refund")
    def get(self, request, pk):
        refund = get_object_or_404(Refund.objects.select_related("payment"), pk=pk)
        visible_booking(request, refund.payment.booking_id)
        return Response(RefundOutput.render(refund))
