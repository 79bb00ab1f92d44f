"""The Django admin of the whole shop; `admin.autodiscover()` imports this package.

Each module registers the admins of one app's models; importing them here is
what registers them. The site is named like the shop (not "Django
administration") and drops Django's navigation sidebar, so the lists have the
width of the window (templates/admin/base_site.html, static/css/backoffice.css).
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy

from backoffice.admin import bookings, events, payments, ticket_types  # noqa: F401 - registers the admins

admin.site.site_header = gettext_lazy("Ticketing back office")
admin.site.site_title = gettext_lazy("Ticketing back office")
admin.site.index_title = gettext_lazy("Events, bookings and payments")
admin.site.enable_nav_sidebar = False
