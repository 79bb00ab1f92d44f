"""The booking page, pay, refund and the ticket page: included into the `bookings` namespace by ticketing/urls.py."""

from django.urls import path

from payments import views

urlpatterns = [
    path("<uuid:pk>/", views.BookingDetailView.as_view(), name="detail"),
    path("<uuid:pk>/pay/", views.BookingPayView.as_view(), name="pay"),
    path("<uuid:pk>/refund/", views.BookingRefundView.as_view(), name="refund"),
    path("<uuid:pk>/tickets/<uuid:ticket_pk>/", views.TicketDetailView.as_view(), name="ticket"),
]
