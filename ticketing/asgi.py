"""
ASGI config for ticketing project.

It exposes the ASGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'ticketing.settings')

application = get_asgi_application()

# With DJANGO_DEBUG off, refuse to serve on development defaults (core/checks.py).
from core.checks import refuse_unsafe_start  # noqa: E402 - after Django is set up

refuse_unsafe_start()
