"""The "Organizer" group: what an organizer's staff members may do in the admin.

Which rows they see is decided by organizer membership (`events.permissions`);
this group decides what they may do with those rows. A data migration creates
it and `create_organizer` re-syncs it, so it is also back after a database
flush (Django's `flush` keeps no groups).
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db import transaction

ORGANIZER_GROUP = "Organizer"

# (app label, model, verbose name, actions) of the model permissions the group holds.
MODEL_PERMISSIONS = [
    ("events", "event", "event", ("view", "add", "change", "delete")),
    ("events", "tickettype", "ticket type", ("view", "add", "change", "delete")),
    ("bookings", "booking", "booking", ("view",)),
    ("bookings", "ticket", "ticket", ("view",)),
    ("payments", "payment", "payment", ("view",)),
    ("payments", "refund", "refund", ("view",)),
]

# Permissions for the admin actions that move money or state on rows the
# group otherwise only views (no model form edits them). Deleting an event or
# a ticket type is allowed only while nothing was booked (the services refuse).
CUSTOM_PERMISSIONS = [
    ("bookings", "booking", "refund_booking", "Can refund bookings"),
    ("bookings", "booking", "cancel_booking", "Can cancel held bookings"),
    ("bookings", "booking", "resend_booking_confirmation", "Can resend booking confirmations"),
    ("payments", "refund", "retry_refund", "Can retry failed refunds"),
]


def organizer_group_sync(apps=global_apps):
    """Create the group, or add any of these permissions it lacks (others given by hand stay); return it.

    `apps` is the app registry: a migration passes its historical one. The
    permissions are created when missing (during `migrate`, Django creates the
    model permissions only after the last migration).
    """
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")

    def permission(app_label: str, model: str, codename: str, name: str):
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        return Permission.objects.get_or_create(content_type=content_type, codename=codename,
                                                defaults={"name": name})[0]

    wanted = [
        permission(app_label, model, f"{action}_{model}", f"Can {action} {verbose_name}")
        for app_label, model, verbose_name, actions in MODEL_PERMISSIONS
        for action in actions
    ]
    wanted += [permission(*spec) for spec in CUSTOM_PERMISSIONS]
    group, _ = Group.objects.get_or_create(name=ORGANIZER_GROUP)
    group.permissions.add(*wanted)
    return group


def organizer_member_add(*, organizer, user):
    """Make `user` a staff member of `organizer`: staff flag, the "Organizer" group, membership.

    The one way an organizer gets a member: `create_organizer` and `seed_demo`
    both call it, so the demo's `organizer` login is exactly what a real one is
    (no direct user permissions, nothing to do with Organizers themselves).
    `user` is saved; calling it again changes nothing.
    """
    with transaction.atomic():
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(organizer_group_sync())
        organizer.members.add(user)
    return user
