"""Organizer scoping for the admin: a member of an organizer sees and acts on only its rows.

Who manages which event is decided once, in `events.permissions`
(superusers: every event; staff: the events of the organizers they are a
member of). This module only knows how each organizer-owned model reaches its
event, and applies that rule everywhere the admin reads rows: change lists,
change views, search, list filters, autocomplete, foreign-key choices,
inlines and actions (actions get their queryset from `get_queryset`).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import Model, QuerySet

from events.models import Event, Organizer
from events.permissions import can_manage_event, events_managed_by, has_organizer_permission, organizer_ids

# The lookup from each organizer-owned model (by label) to its event ("" for the event itself).
EVENT_PATHS: dict[str, str] = {
    "events.event": "",
    "events.tickettype": "event",
    "bookings.booking": "event",
    "bookings.ticket": "booking__event",
    "payments.payment": "booking__event",
    "payments.refund": "payment__booking__event",
}


def is_scoped(model: type[Model]) -> bool:
    return model._meta.label_lower in EVENT_PATHS or model is Organizer


def organizers_managed_by(user) -> QuerySet[Organizer]:
    """The organizers whose events `user` manages (the same rule as `events_managed_by`)."""
    if user is not None and user.is_authenticated and user.is_superuser:
        return Organizer.objects.all()
    return Organizer.objects.filter(pk__in=organizer_ids(user))


def scope_queryset(queryset: QuerySet, user) -> QuerySet:
    """`queryset` narrowed to the rows of the events `user` manages."""
    model = queryset.model
    if model is Organizer:
        return queryset.filter(pk__in=organizers_managed_by(user).values("pk"))
    path = EVENT_PATHS[model._meta.label_lower]
    events = events_managed_by(user)
    if not path:
        return queryset.filter(pk__in=events.values("pk"))
    return queryset.filter(**{f"{path}__in": events.values("pk")})


def event_of(obj: Model) -> Event:
    """The event an organizer-owned row belongs to."""
    path = EVENT_PATHS[obj._meta.label_lower]
    for attr in filter(None, path.split("__")):
        obj = getattr(obj, attr)
    return obj


def user_manages(user, obj: Model | None) -> bool:
    """Whether `user` may see and act on `obj` (None: no particular row)."""
    if obj is None:
        return True
    if isinstance(obj, Organizer):
        return organizers_managed_by(user).filter(pk=obj.pk).exists()
    return can_manage_event(user, event_of(obj))


def may(user, opts, action: str, obj: Model | None) -> bool:
    """The admin's `has_<action>_permission` for the model of `opts` and the row `obj` (for an
    inline, its parent row): `events.permissions.has_organizer_permission` with the model's
    permission, on the row's event. Django's rule that changing implies viewing is kept."""
    def holds(act: str) -> bool:
        perm = f"{opts.app_label}.{get_permission_codename(act, opts)}"
        if obj is None or isinstance(obj, Organizer):
            return has_organizer_permission(user, perm) and user_manages(user, obj)
        return has_organizer_permission(user, perm, event_of(obj))

    return holds(action) or (action == "view" and holds("change"))


class _ScopedBase:
    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and is_scoped(db_field.related_model):
            kwargs["queryset"] = scope_queryset(db_field.related_model._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and is_scoped(db_field.related_model):
            kwargs["queryset"] = scope_queryset(db_field.related_model._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class OrganizerScopedAdmin(_ScopedBase, admin.ModelAdmin):
    """A ModelAdmin that shows a staff user only the rows of the organizers they belong to.

    Rows out of scope do not exist for the user: change views, actions, search,
    autocomplete, foreign-key and list-filter choices never reach one. Permissions
    are `events.permissions`' (`may`), asked on the row's event, as the API asks them.
    """

    def get_search_results(self, request, queryset, search_term):
        # The autocomplete view and the change list pass `get_queryset`; scoping
        # the result again keeps any other caller from widening it.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return scope_queryset(queryset, request.user), may_have_duplicates

    def has_view_permission(self, request, obj=None):
        return may(request.user, self.opts, "view", obj)

    def has_add_permission(self, request):
        return may(request.user, self.opts, "add", None)

    def has_change_permission(self, request, obj=None):
        return may(request.user, self.opts, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return may(request.user, self.opts, "delete", obj)


class OrganizerScopedInline(_ScopedBase):
    """Mixin for inlines: rows in scope only; `obj` in the permission checks is the parent row."""

    def has_view_permission(self, request, obj=None):
        return may(request.user, self.opts, "view", obj)

    def has_change_permission(self, request, obj=None):
        return may(request.user, self.opts, "change", obj)

    def has_add_permission(self, request, obj=None):
        return may(request.user, self.opts, "add", obj)

    def has_delete_permission(self, request, obj=None):
        return may(request.user, self.opts, "delete", obj)


def not_cancelled(event: Event | None) -> bool:
    """False for a cancelled event: nothing of it changes any more (the services refuse it too)."""
    return event is None or event.status != Event.Status.CANCELLED


class ReadOnlyAdminMixin:
    """Rows that only services write: nobody adds, edits or deletes them in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
