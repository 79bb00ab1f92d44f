"""API tokens move from DRF's plain-text `authtoken_token` table to django-rest-knox's digests.

Each existing key keeps working: knox stores the digest of the same key. The plain
keys are then deleted from the old table (the app is no longer installed; its empty
table stays). Nothing to do on a database that never had the old table.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"


def tokens_hash(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if OLD_TABLE not in connection.introspection.table_names(cursor):
            return
        cursor.execute(f"SELECT key, user_id, created FROM {OLD_TABLE}")  # noqa: S608 - a constant
        rows = cursor.fetchall()
        AuthToken = apps.get_model("knox", "AuthToken")
        hours = getattr(settings, "API_TOKEN_TTL_HOURS", None)
        AuthToken.objects.using(connection.alias).bulk_create(
            [AuthToken(digest=hash_token(key), token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id,
                       expiry=(created or timezone.now()) + timedelta(hours=hours) if hours else None)
             for key, user_id, created in rows],
            ignore_conflicts=True,
        )
        cursor.execute(f"DELETE FROM {OLD_TABLE}")  # noqa: S608 - a constant


class Migration(migrations.Migration):

    dependencies = [
        ("ticketing", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunPython(tokens_hash, migrations.RunPython.noop, elidable=True),
    ]
