from django.urls import path

from events import views

app_name = "events"

urlpatterns = [
    path("", views.EventListView.as_view(), name="list"),
    path("events/<uuid:pk>/availability/", views.EventAvailabilityView.as_view(), name="availability"),
    path("events/<uuid:pk>/<slug:slug>/", views.EventDetailView.as_view(), name="detail"),
]
