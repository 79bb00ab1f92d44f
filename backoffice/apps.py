from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The organizer back office: the whole Django admin, on top of events, bookings and payments."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "backoffice"
