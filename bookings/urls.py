"""The `bookings` namespace; ticketing/urls.py adds the booking page, pay and refund (payments.urls)."""

from django.urls import path

from bookings import views

app_name = "bookings"

urlpatterns = [
    path("", views.MyBookingsView.as_view(), name="mine"),
    path("reserve/<uuid:event_pk>/", views.BookingReserveView.as_view(), name="reserve"),
    path("<uuid:pk>/cancel/", views.BookingCancelView.as_view(), name="cancel"),
    path("<uuid:pk>/tickets/<uuid:ticket_pk>/", views.TicketDetailView.as_view(), name="ticket"),
]
