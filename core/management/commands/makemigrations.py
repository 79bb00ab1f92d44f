"""Django's makemigrations, without the production start-up checks (core/checks.py).

It writes migration files and serves nothing, so it runs on the development defaults whatever
DJANGO_DEBUG says: `python manage.py makemigrations --check` works on a fresh checkout.
"""

from django.core import checks
from django.core.management.commands import makemigrations

from core.checks import PRODUCTION


class Command(makemigrations.Command):
    # Every registered check but the production ones (Django runs checks by tag).
    requires_system_checks = [tag for tag in checks.registry.registry.tags_available() if tag != PRODUCTION]
