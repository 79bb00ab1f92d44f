"""The "Organizer" group and its permissions (see events/organizer_group.py)."""

from django.db import migrations


def create_group(apps, schema_editor):
    from events.organizer_group import organizer_group_sync

    organizer_group_sync(apps)


def remove_group(apps, schema_editor):
    from events.organizer_group import ORGANIZER_GROUP

    apps.get_model("auth", "Group").objects.filter(name=ORGANIZER_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_group, remove_group),
    ]
