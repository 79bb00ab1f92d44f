from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'payments'

    def ready(self) -> None:
        from payments import checks  # noqa: F401 - registers the production checks
