from django.apps import AppConfig


class TicketingConfig(AppConfig):
    """Project-wide pieces that need tables or signals: API idempotency keys, token cache."""

    name = "ticketing"
    verbose_name = "Ticketing"

    def ready(self) -> None:
        from ticketing import signals  # noqa: F401
