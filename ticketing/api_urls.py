"""/api/v1/ (DESIGN.md section 9): paths, methods and field names are a contract."""

from django.urls import path, re_path

from bookings import api as bookings_api
from core.accounts import TokenApi
from core.api import not_found
from events import api as events_api
from payments import api as payments_api

urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="token"),
    path("events/", events_api.EventListCreateApi.as_view(), name="events"),
    path("events/<uuid:pk>/", events_api.EventDetailApi.as_view(), name="event"),
    path("events/<uuid:pk>/publish/", events_api.EventPublishApi.as_view(), name="event-publish"),
    path("events/<uuid:pk>/cancel/", payments_api.EventCancelApi.as_view(), name="event-cancel"),
    path("events/<uuid:pk>/availability/", events_api.AvailabilityApi.as_view(), name="event-availability"),
    path("events/<uuid:pk>/ticket-types/", events_api.TicketTypeListCreateApi.as_view(), name="ticket-types"),
    path("events/<uuid:pk>/ticket-types/<uuid:tt_id>/", events_api.TicketTypeDetailApi.as_view(),
         name="ticket-type"),
    path("bookings/", bookings_api.BookingListCreateApi.as_view(), name="bookings"),
    path("bookings/<uuid:pk>/", bookings_api.BookingDetailApi.as_view(), name="booking"),
    path("bookings/<uuid:pk>/pay/", payments_api.BookingPayApi.as_view(), name="booking-pay"),
    path("bookings/<uuid:pk>/cancel/", bookings_api.BookingCancelApi.as_view(), name="booking-cancel"),
    path("bookings/<uuid:pk>/refund/", payments_api.BookingRefundApi.as_view(), name="booking-refund"),
    path("payments/<uuid:pk>/", payments_api.PaymentDetailApi.as_view(), name="payment"),
    path("refunds/<uuid:pk>/", payments_api.RefundDetailApi.as_view(), name="refund"),
    # Last: a path no route matches (a malformed id) gets a problem body, not the site's HTML 404.
    # Only paths ending in "/", so a missing trailing slash is still redirected (APPEND_SLASH).
    re_path(r"^[\s\S]*/$", not_found, name="not-found"),
]
