from django.urls import path

from bookings import views

app_name = "bookings"

urlpatterns = [
    path("<uuid:pk>/", views.BookingDetailView.as_view(), name="detail"),
]
