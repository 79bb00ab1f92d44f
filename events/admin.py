from django.contrib import admin

from events.models import Event, Organizer, TicketType


@admin.register(Organizer)
class OrganizerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


class TicketTypeInline(admin.TabularInline):
    model = TicketType
    extra = 0
    fields = ["name", "price", "capacity", "sold", "held", "max_per_booking", "sales_start", "sales_end"]
    readonly_fields = ["sold", "held"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "organizer", "starts_at", "city", "status", "capacity", "sold", "held"]
    list_filter = ["status", "category", "starts_at"]
    search_fields = ["name", "venue", "city"]
    readonly_fields = ["status", "sold", "held", "published_at", "cancelled_at"]
    inlines = [TicketTypeInline]
