"""The `bookings` namespace; ticketing/urls.py adds the booking page, pay, refund and the ticket page
(payments.urls: they show refunds)."""

from django.urls import path

from bookings import views

app_name = "bookings"

urlpatterns = [
    path("", views.MyBookingsView.as_view(), name="mine"),
    path("reserve/<uuid:event_pk>/", views.BookingReserveView.as_view(), name="reserve"),
    path("<uuid:pk>/cancel/", views.BookingCancelView.as_view(), name="cancel"),
]
