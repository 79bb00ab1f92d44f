"""The Django admin of the whole shop; `admin.autodiscover()` imports this package.

Each module registers the admins of one app's models; importing them here is
what registers them.
"""

from backoffice.admin import bookings, events, payments, ticket_types  # noqa: F401 - registers the admins
