"""API door of the events app: catalogue, availability, organizer management (thin over services)."""

from __future__ import annotations

import zoneinfo

from django.core.validators import slug_re
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from core.api import MoneyField, Rendered, ScopedThrottleMixin, StrictInput, StrictQuery, query_filters, validated
from core.api_schema import NOT_FOUND, READ_ERRORS, THROTTLED, WRITE_ERRORS
from core.currencies import CURRENCIES
from core.idempotency import idempotent
from events.models import Event, Organizer, TicketType
from events.permissions import (
    can_add_ticket_type,
    can_change_event,
    can_change_ticket_type,
    can_create_event,
    can_delete_event,
    can_delete_ticket_type,
    can_publish_event,
    events_visible_to,
    organizer_ids,
)
from events.selectors import availability_for_event, event_available, event_list_published, ticket_type_available
from events.services import (
    BUYER_LIMIT_FIELDS,
    event_create,
    event_delete,
    event_publish,
    event_update,
    ticket_type_create,
    ticket_type_delete,
    ticket_type_update,
)

# --- Serializers -----------------------------------------------------------------------------


class TicketTypeOutput(serializers.ModelSerializer):
    available = serializers.SerializerMethodField()

    class Meta:
        model = TicketType
        fields = ["id", "name", "description", "price", "capacity", "sold", "held", "available",
                  "max_per_booking", "sales_start", "sales_end", "position"]

    def get_available(self, tt: TicketType) -> int:
        return ticket_type_available(tt, event=self.context.get("event") or tt.event)


class TicketTypeInput(StrictInput):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    price = MoneyField()
    capacity = serializers.IntegerField(min_value=0, max_value=1_000_000_000)
    max_per_booking = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    sales_start = serializers.DateTimeField(required=False, allow_null=True)
    sales_end = serializers.DateTimeField(required=False, allow_null=True)
    position = serializers.IntegerField(min_value=0, max_value=32767, required=False)


class EventOutput(Rendered, serializers.ModelSerializer):
    organizer = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    available = serializers.SerializerMethodField()
    min_price = serializers.SerializerMethodField()
    max_price = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "organizer", "name", "slug", "description", "venue", "city", "category", "starts_at",
                  "ends_at", "timezone", "status", "currency", "capacity", "sold", "held", "available",
                  "min_price", "max_price", *BUYER_LIMIT_FIELDS]

    def get_available(self, event: Event) -> int:
        if hasattr(event, "type_remaining"):
            return event_available(event)
        return availability_for_event(event=event).available

    def _prices(self, event: Event) -> list:
        return [tt.price for tt in event.ticket_types.all()]

    def get_min_price(self, event: Event) -> str | None:
        value = getattr(event, "min_price", None) if hasattr(event, "type_remaining") else min(
            self._prices(event), default=None)
        return None if value is None else f"{value:.2f}"

    def get_max_price(self, event: Event) -> str | None:
        value = getattr(event, "max_price", None) if hasattr(event, "type_remaining") else max(
            self._prices(event), default=None)
        return None if value is None else f"{value:.2f}"


class EventDetailOutput(EventOutput):
    ticket_types = serializers.SerializerMethodField()

    class Meta(EventOutput.Meta):
        fields = [*EventOutput.Meta.fields, "ticket_types"]

    @extend_schema(responses=TicketTypeOutput(many=True))
    def get_ticket_types(self, event: Event) -> list:
        return TicketTypeOutput(event.ticket_types.all(), many=True, context={"event": event}).data


# The time zones the model accepts (events.models.validate_timezone), as the schema's enum.
TIMEZONES = sorted(zoneinfo.available_timezones())


@extend_schema_field({"type": "string", "enum": TIMEZONES, "description": "An IANA time zone, e.g. Europe/Berlin."},
                     component_name="TimeZone")
class TimeZoneField(serializers.ChoiceField):
    """One of TIMEZONES (a component of its own in the schema, without a line per choice)."""

    def __init__(self, **kwargs):
        super().__init__(choices=TIMEZONES, **kwargs)


@extend_schema_field({"type": "string", "enum": list(CURRENCIES), "description": "An ISO 4217 code, e.g. EUR."},
                     component_name="Currency")
class CurrencyField(serializers.ChoiceField):
    """One of core.currencies' active ISO 4217 codes (a component of its own in the schema)."""

    def __init__(self, **kwargs):
        super().__init__(choices=list(CURRENCIES), **kwargs)


class EventInput(StrictInput):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    venue = serializers.CharField(max_length=200)
    city = serializers.CharField(max_length=100)
    category = serializers.ChoiceField(choices=Event.Category.choices, required=False)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    timezone = TimeZoneField(required=False)
    currency = CurrencyField(required=False)
    capacity = serializers.IntegerField(min_value=0, max_value=1_000_000_000, required=False, allow_null=True)
    # The organizer's hoarding limits for this event (null: the site's defaults, 0: no limit).
    max_holds_per_buyer = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True,
        help_text="Reservations awaiting payment one buyer (account or guest e-mail) may have at once; "
                  "null: the site's default (BOOKING_MAX_HOLDS_PER_BUYER), 0: no limit.")
    max_holds_per_ip = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True,
        help_text="Reservations awaiting payment from one client address at once (IPv6: per /64); "
                  "null: the site's default (BOOKING_MAX_HOLDS_PER_IP), 0: no limit.")
    max_tickets_per_buyer = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True,
        help_text="Tickets one buyer may hold or have bought for this event, over all their bookings; "
                  "null: the site's default (BOOKING_MAX_TICKETS_PER_BUYER), 0: no limit.")


class EventCreateInput(EventInput):
    organizer = serializers.SlugField(required=False, help_text="Organizer slug; needed only when the caller "
                                                                "is a member of several organizers.")


class EventFilter(StrictQuery):
    q = serializers.CharField(required=False, max_length=200)
    city = serializers.CharField(required=False, max_length=100)
    category = serializers.ChoiceField(choices=Event.Category.choices, required=False)
    starts_after = serializers.DateTimeField(required=False)
    starts_before = serializers.DateTimeField(required=False)
    ordering = serializers.ChoiceField(choices=["starts_at", "-starts_at", "name", "-name"], required=False)


# --- Helpers ---------------------------------------------------------------------------------


def _visible_event(request, pk) -> Event:
    """The event if the caller may see it, else 404."""
    return get_object_or_404(events_visible_to(request.user).select_related("organizer"), pk=pk)


def _organizer_for_create(request, slug: str | None) -> Organizer | None:
    """The organizer the new event is for: the one named (403 unless the caller may create events
    for it), or the caller's only one; None when the caller belongs to several and named none."""
    if slug is not None:
        organizer = Organizer.objects.filter(slug=slug).first()
        if request.user.is_superuser and organizer is None:
            raise Http404
        if organizer is None or not can_create_event(request.user, organizer):
            raise PermissionDenied("You may not create events for this organizer.")
        return organizer
    ids = organizer_ids(request.user)
    if len(ids) != 1:
        if not ids:  # a superuser of no organizer
            raise PermissionDenied("Only organizer members can create events.")
        return None
    return Organizer.objects.get(pk=next(iter(ids)))


def _named_organizer(data) -> str | None:
    """The `organizer` slug of a create body as sent: the permission to create for it is checked
    before the body is validated. Anything but a slug names no organizer (validation says why)."""
    value = data.get("organizer") if isinstance(data, dict) else None
    return value if isinstance(value, str) and slug_re.match(value) else None


def _may_replay_create(request, body) -> bool:
    """A stored "created" answer goes only to a caller who may still create events for its organizer."""
    organizer = Organizer.objects.filter(slug=(body or {}).get("organizer") or "").first()
    return organizer is not None and can_create_event(request.user, organizer)


class OrganizerPermission(BasePermission):
    """Organizer writes: `view.organizer_checks[method](user, event)`, functions of
    `events.permissions` (the admin's rules), on the event of the URL (None on a route
    without one). The event is found first: 404 when the caller may not see it.

    DRF checks permissions before the handler runs, so a caller who may not write is
    refused (403) whatever the body, before it is even parsed, and on every replay
    of an `Idempotency-Key`. Reads pass: `events_visible_to` scopes them.
    """

    message = "Only the event's organizer staff with the permission can do this."
    reads_resource = True  # checked after the throttles (core.api.ScopedThrottleMixin)

    def has_permission(self, request, view) -> bool:
        check = view.organizer_checks.get(request.method)
        if check is None:
            return True
        self.message = getattr(view, "permission_message", type(self).message)
        event = view.event() if "pk" in view.kwargs else None
        return check(request.user, event)


# The base of the views of one event's URL (`pk`), here and in `payments.api` (cancelling an event
# refunds its bookings). A comment, not a docstring: drf-spectacular would describe every view with it.
class EventScopedApi(ScopedThrottleMixin, GenericAPIView):
    permission_classes = [IsAuthenticatedOrReadOnly, OrganizerPermission]
    organizer_checks: dict = {}  # HTTP method -> events.permissions function(user, event)

    def event(self) -> Event:
        """The event of the URL if the caller may see it (else 404), read once per request."""
        if getattr(self, "_event", None) is None:
            self._event = _visible_event(self.request, self.kwargs["pk"])
        return self._event


# --- Views -----------------------------------------------------------------------------------


class EventListCreateApi(EventScopedApi):
    organizer_checks = {"POST": can_create_event}
    permission_message = "Only organizer staff who may add events can create events."

    @extend_schema(parameters=[EventFilter], responses={200: EventOutput(many=True), **READ_ERRORS},
                   summary="List published events (and, for organizer members, their own)")
    def get(self, request):
        params = query_filters(EventFilter, request)
        ordering = params.pop("ordering", None)
        qs = event_list_published(**params, base=events_visible_to(request.user))
        if ordering:
            qs = qs.order_by(ordering, "pk")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(EventOutput.render(page, many=True))

    @extend_schema(request=EventCreateInput, responses={201: EventDetailOutput, **WRITE_ERRORS},
                   summary="Create a draft event (organizer members)")
    @idempotent(replay_allowed=_may_replay_create)
    def post(self, request):
        organizer = _organizer_for_create(request, _named_organizer(request.data))
        fields = dict(validated(EventCreateInput, request.data))
        fields.pop("organizer", None)
        if organizer is None:
            raise serializers.ValidationError({"organizer": ["You belong to several organizers: name one."]})
        event = event_create(organizer=organizer, **fields)
        return Response(EventDetailOutput.render(event), status=status.HTTP_201_CREATED)


class EventDetailApi(EventScopedApi):
    organizer_checks = {"PUT": can_change_event, "PATCH": can_change_event, "DELETE": can_delete_event}

    @extend_schema(responses={200: EventDetailOutput, **READ_ERRORS}, summary="An event with its ticket types")
    def get(self, request, pk):
        return Response(EventDetailOutput.render(_visible_event(request, pk)))

    @extend_schema(request=EventInput, responses={200: EventDetailOutput, **WRITE_ERRORS},
                   summary="Replace an event's details (its organizer)")
    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    @extend_schema(request=EventInput(partial=True), responses={200: EventDetailOutput, **WRITE_ERRORS},
                   summary="Change some of an event's details (its organizer)")
    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def _update(self, request, pk, *, partial: bool):
        event = self.event()
        data = validated(EventInput, request.data, partial=partial)
        event = event_update(event=event, **data)
        return Response(EventDetailOutput.render(event))

    @extend_schema(responses={204: None, **WRITE_ERRORS},
                   summary="Delete an event without bookings (409 `has_sales` otherwise: cancel it)")
    def delete(self, request, pk):
        event_delete(event=self.event())
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventPublishApi(EventScopedApi):
    organizer_checks = {"POST": can_publish_event}

    @extend_schema(request=None, responses={200: EventDetailOutput, **WRITE_ERRORS},
                   summary="Publish a draft event: it goes on sale")
    @idempotent()
    def post(self, request, pk):
        event = event_publish(event=self.event())
        return Response(EventDetailOutput.render(event))


class TicketTypeListCreateApi(EventScopedApi):
    organizer_checks = {"POST": can_add_ticket_type}

    @extend_schema(responses={200: TicketTypeOutput(many=True), **READ_ERRORS}, summary="An event's ticket types")
    def get(self, request, pk):
        event = self.event()
        page = self.paginate_queryset(event.ticket_types.all())
        return self.get_paginated_response(TicketTypeOutput(page, many=True, context={"event": event}).data)

    @extend_schema(request=TicketTypeInput, responses={201: TicketTypeOutput, **WRITE_ERRORS},
                   summary="Add a ticket type (the event's organizer)")
    @idempotent()
    def post(self, request, pk):
        event = self.event()
        data = validated(TicketTypeInput, request.data)
        tt = ticket_type_create(event=event, **data)
        return Response(TicketTypeOutput(tt, context={"event": event}).data, status=status.HTTP_201_CREATED)


class TicketTypeDetailApi(EventScopedApi):
    organizer_checks = {"PUT": can_change_ticket_type, "PATCH": can_change_ticket_type,
                        "DELETE": can_delete_ticket_type}

    def _get(self, request, pk, tt_id) -> TicketType:
        event = self.event()
        tt = get_object_or_404(TicketType, pk=tt_id, event=event)
        tt.event = event
        return tt

    @extend_schema(responses={200: TicketTypeOutput, **READ_ERRORS}, summary="A ticket type")
    def get(self, request, pk, tt_id):
        return Response(TicketTypeOutput(self._get(request, pk, tt_id)).data)

    @extend_schema(request=TicketTypeInput, responses={200: TicketTypeOutput, **WRITE_ERRORS},
                   summary="Replace a ticket type (capacity never below sold + held: 409)")
    def put(self, request, pk, tt_id):
        return self._update(request, pk, tt_id, partial=False)

    @extend_schema(request=TicketTypeInput(partial=True), responses={200: TicketTypeOutput, **WRITE_ERRORS},
                   summary="Change a ticket type (capacity never below sold + held: 409)")
    def patch(self, request, pk, tt_id):
        return self._update(request, pk, tt_id, partial=True)

    def _update(self, request, pk, tt_id, *, partial: bool):
        tt = self._get(request, pk, tt_id)
        data = validated(TicketTypeInput, request.data, partial=partial)
        tt = ticket_type_update(ticket_type=tt, **data)
        return Response(TicketTypeOutput(tt).data)

    @extend_schema(responses={204: None, **WRITE_ERRORS}, summary="Delete a ticket type never booked")
    def delete(self, request, pk, tt_id):
        ticket_type_delete(ticket_type=self._get(request, pk, tt_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AvailabilityOutput(Rendered, serializers.Serializer):
    class Row(serializers.Serializer):
        id = serializers.UUIDField()
        name = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        capacity = serializers.IntegerField()
        sold = serializers.IntegerField()
        held = serializers.IntegerField()
        available = serializers.IntegerField()

    event = serializers.UUIDField()
    capacity = serializers.IntegerField(allow_null=True)
    available = serializers.IntegerField()
    ticket_types = Row(many=True)


class AvailabilityApi(EventScopedApi):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: AvailabilityOutput, 404: NOT_FOUND, 429: THROTTLED},
                   summary="Live availability of an event")
    def get(self, request, pk):
        return Response(AvailabilityOutput.render(availability_for_event(event=_visible_event(request, pk))))

