from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared foundation as a Django app: API idempotency keys (its one model), API tokens and their
    cache, the production start-up checks, the site's template tags.

    Its label stays `ticketing`, the name these pieces had before the foundation left the project
    package, so its tables and migrations are the ones already applied.
    """

    name = "core"
    label = "ticketing"
    verbose_name = "Ticketing"

    def ready(self) -> None:
        from core import checks, signals  # noqa: F401 - registers the checks and the receivers
