"""API door of bookings: reserve, list, read, cancel (thin over services).

Paying and refunding are in `payments.api` (imports flow payments -> bookings).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from bookings.models import Booking, Ticket
from bookings.permissions import may_cancel_booking
from bookings.selectors import BookingAccess, booking_get_access, booking_list_for_user
from bookings.services import LineItem, booking_cancel, booking_reserve
from core.api import (
    BookingsThrottle,
    Rendered,
    ScopedThrottleMixin,
    StrictInput,
    StrictQuery,
    query_filters,
    validated,
)
from core.api_schema import GUEST_LINK_EXPIRED, READ_ERRORS, WRITE_ERRORS
from core.client_ip import client_ip
from core.idempotency import idempotent
from events.permissions import event_visible_to

TOKEN_PARAM = OpenApiParameter("token", str, description="The booking's access token (guest links).")
# Booking routes: a token or a session, or none at all with the booking's `?token=` (guest links).
LOGIN_OR_TOKEN = [{"tokenAuth": []}, {"cookieAuth": []}, {}]

# --- Serializers -----------------------------------------------------------------------------


class TicketOutput(serializers.ModelSerializer):
    code = serializers.SerializerMethodField(help_text="The check-in code; set once the ticket is issued.")

    class Meta:
        model = Ticket
        fields = ["id", "ticket_type", "status", "code", "price", "attendee_name", "issued_at"]

    def get_code(self, ticket: Ticket) -> str | None:
        return ticket.code if ticket.status == Ticket.Status.ISSUED else None


class PaymentSummary(serializers.Serializer):
    """A booking's payment as listed on the booking (full detail: /payments/{id}/)."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    card_brand = serializers.CharField()
    card_last4 = serializers.CharField()
    failure_code = serializers.CharField()


class BookingOutput(Rendered, serializers.ModelSerializer):
    tickets = TicketOutput(many=True, read_only=True)
    payments = PaymentSummary(many=True, read_only=True)
    access_token = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The secret of the booking's guest link (`?token=`); only for the booking's owner "
                  "(the buyer, or a caller who used the link), null for the event's organizer.")

    class Meta:
        model = Booking
        fields = ["id", "event", "status", "email", "expires_at", "total", "currency", "tickets", "payments",
                  "access_token", "created_at", "confirmed_at"]


class BookingInput(StrictInput):
    """A reservation: at most BOOKING_MAX_ITEMS items and BOOKING_MAX_TICKETS tickets in all; each
    ticket type's `max_per_booking` and the buyer's limits for the event apply too."""

    # The bounds are the service's hard ones, read once at start-up so the schema states them (a
    # ListField, not `many=True`: drf-spectacular declares its minItems/maxItems). The total over
    # the items and each type's `max_per_booking` are checked by the service before anything is built.
    class Item(StrictInput):
        """`quantity` tickets of one ticket type."""

        ticket_type = serializers.UUIDField()
        quantity = serializers.IntegerField(min_value=1, max_value=settings.BOOKING_MAX_TICKETS)

    event = serializers.UUIDField()
    items = serializers.ListField(child=Item(), allow_empty=False, min_length=1, max_length=settings.BOOKING_MAX_ITEMS)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)  # Booking.email's length


class BookingFilter(StrictQuery):
    event = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=Booking.Status.choices, required=False)


def _with_related(booking_qs):
    return booking_qs.prefetch_related("tickets", "payments")


class IsAuthenticatedOrHasToken(BasePermission):
    """Booking routes: a logged-in caller, or a guest with the booking's `?token=` (checked by
    `visible_booking`). Anyone else is asked to authenticate (401), like on every other write."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) or bool(request.query_params.get("token"))


class BookingPermission(BasePermission):
    """The booking of the URL (`pk`): the caller reaches it (404 otherwise; 410 `guest_link_expired`
    for an expired guest link) and may do what the view asks (`view.booking_check(user, access)`,
    from `bookings.permissions`; 403 otherwise). After `IsAuthenticatedOrHasToken`.

    DRF checks permissions before the handler runs: before the body is read, and on every
    replay of an `Idempotency-Key`, so a stored answer goes only to a caller allowed now.
    """

    message = "Only the booking's buyer or the event's organizer staff with the permission can do this."
    reads_resource = True  # checked after the throttles (core.api.ScopedThrottleMixin)

    def has_permission(self, request, view) -> bool:
        access = booking_access_of(request, view.kwargs["pk"])
        check = getattr(view, "booking_check", None)
        return check is None or check(request.user, access)


def booking_access_of(request, pk) -> BookingAccess:
    """How the caller reaches the booking (buyer, guest link, organizer); 404 for anyone else.
    Kept on the request: the permission check and the handler ask once."""
    cached = getattr(request, "_booking_access", None)
    if cached is not None and str(cached.booking.pk) == str(pk):
        return cached
    token = request.query_params.get("token")
    access = booking_get_access(booking_id=pk, user=request.user, token=token)
    if access is None:
        raise Http404
    request._booking_access = access
    return access


def visible_booking(request, pk) -> Booking:
    """The booking for its buyer, its organizer or a holder of its token; 404 for anyone else."""
    return booking_access_of(request, pk).booking


def render_booking(data: dict, *, owner: bool) -> dict:
    """A rendered booking as the caller may see it: the access token only for its owner."""
    if not owner:
        data["access_token"] = None
    return data


def booking_output(booking: Booking, *, owner: bool) -> dict:
    data = BookingOutput.render(_with_related(Booking.objects.filter(pk=booking.pk)).get())
    return render_booking(data, owner=owner)


# --- Views -----------------------------------------------------------------------------------

RESERVE_EXAMPLE = OpenApiExample(
    "Two tickets", request_only=True,
    value={"event": "9b2f6a1e-5d7c-4c1e-9a51-3f0e6c1d2b7a",
           "items": [{"ticket_type": "0c8e7d2a-1b3f-4e5a-8c9d-7f6e5d4c3b2a", "quantity": 2}],
           "email": "ada@example.com"},
)


class BookingListCreateApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticated]
    extra_throttles = (BookingsThrottle,)

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "GET":
            return [t for t in throttles if not isinstance(t, BookingsThrottle)]
        return throttles

    @extend_schema(parameters=[BookingFilter], responses={200: BookingOutput(many=True), **READ_ERRORS},
                   summary="Your bookings (organizer members: also their events' bookings, filter `event`)")
    def get(self, request):
        filters = query_filters(BookingFilter, request)
        qs = booking_list_for_user(user=request.user, include_managed=True)
        if "event" in filters:
            qs = qs.filter(event_id=filters["event"])
        if "status" in filters:
            qs = qs.filter(status=filters["status"])
        page = self.paginate_queryset(_with_related(qs))
        rows = [render_booking(data, owner=booking.buyer_id == request.user.pk)
                for booking, data in zip(page, BookingOutput.render(page, many=True), strict=True)]
        return self.get_paginated_response(rows)

    @extend_schema(request=BookingInput, responses={201: BookingOutput, **WRITE_ERRORS}, examples=[RESERVE_EXAMPLE],
                   summary="Reserve tickets: a hold until `expires_at` (409 `sold_out` with what is left; "
                           "`all_reserved` true when the rest is held by others and may come back)")
    @idempotent()
    def post(self, request):
        data = validated(BookingInput, request.data)
        event = event_visible_to(request.user, data["event"], recent=True)
        if event is None:
            raise Http404
        booking = booking_reserve(
            event=event,
            items=[LineItem(i["ticket_type"], i["quantity"]) for i in data["items"]],
            email=data.get("email", ""),
            buyer=request.user,
            client_ip=client_ip(request) or None,
        )
        return Response(BookingOutput.render(booking), status=status.HTTP_201_CREATED)  # relations attached


class BookingDetailApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrHasToken, BookingPermission]

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN,
                   responses={200: BookingOutput, **READ_ERRORS, 410: GUEST_LINK_EXPIRED},
                   summary="A booking (its buyer, the event's organizer, or `?token=`)")
    def get(self, request, pk):
        access = booking_access_of(request, pk)
        return Response(booking_output(access.booking, owner=access.owner))


class BookingCancelApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrHasToken, BookingPermission]
    extra_throttles = (BookingsThrottle,)
    booking_check = staticmethod(may_cancel_booking)

    @extend_schema(parameters=[TOKEN_PARAM], auth=LOGIN_OR_TOKEN, request=None,
                   responses={200: BookingOutput, **WRITE_ERRORS, 410: GUEST_LINK_EXPIRED},
                   summary="Release a hold (`reserved` bookings only; the buyer, or organizer staff who may "
                           "cancel bookings)")
    @idempotent()
    def post(self, request, pk):
        access = booking_access_of(request, pk)
        booking = booking_cancel(booking=access.booking)
        return Response(booking_output(booking, owner=access.owner))
