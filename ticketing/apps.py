from django.apps import AppConfig


class TicketingConfig(AppConfig):
    """Project-wide pieces that need tables, signals or checks: API idempotency keys, API tokens and their
    cache, the production safety checks."""

    name = "ticketing"
    verbose_name = "Ticketing"

    def ready(self) -> None:
        from ticketing import checks, signals  # noqa: F401
