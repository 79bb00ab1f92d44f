from django.contrib import admin

from bookings.models import Booking, Ticket


class TicketInline(admin.TabularInline):
    model = Ticket
    extra = 0
    can_delete = False
    fields = ["ticket_type", "status", "price", "attendee_name", "code", "issued_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "email", "status", "total", "currency", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["email", "id"]
    readonly_fields = ["event", "buyer", "email", "status", "expires_at", "total", "currency",
                       "created_at", "confirmed_at", "closed_at"]
    exclude = ["access_token"]
    inlines = [TicketInline]

    def has_add_permission(self, request):
        return False
