"""`manage.py create_organizer "Name" --username u --email e [--password p]`.

Creates an organizer and its first member: a staff user in the "Organizer"
group, who can log in to the admin and manage only this organizer's events.
Without `--password` the password is asked for on a terminal (twice, checked
against the password validators); without a terminal `--password` is needed.
"""

from __future__ import annotations

import getpass
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from events.models import Organizer
from events.organizer_group import organizer_member_add


class Command(BaseCommand):
    help = "Create an organizer with its first member (a staff user in the Organizer group)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The organizer's name.")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", help="Asked for on the terminal when left out (safer: no shell history).")
        parser.add_argument("--slug", help="Defaults to the name, slugified.")

    def handle(self, *args, name: str, username: str, email: str, password: str | None, slug: str | None, **options):
        User = get_user_model()
        name = name.strip()
        if not name:
            raise CommandError("The organizer needs a name.")
        slug = slugify(slug or name)[:100]
        if not slug:
            raise CommandError("Give a --slug: the name has no letters or digits to make one from.")
        if Organizer.objects.filter(slug=slug).exists():
            raise CommandError(f"An organizer with the slug '{slug}' already exists.")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"The username '{username}' is taken.")
        user = User(username=username, email=email, is_staff=True)
        password = password if password is not None else self._ask_password()
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        user.set_password(password)
        with transaction.atomic():
            user.save()
            organizer = Organizer.objects.create(name=name, slug=slug)
            organizer_member_add(organizer=organizer, user=user)
        self.stdout.write(self.style.SUCCESS(
            f"Created organizer '{organizer.name}' ({organizer.slug}) with staff user '{user.username}'."
        ))

    def _ask_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("--password is required when not run on a terminal.")
        for _attempt in range(3):
            first = getpass.getpass("Password: ")
            if first and first == getpass.getpass("Password (again): "):
                return first
            self.stderr.write("The passwords were empty or did not match; try again.")
        raise CommandError("No password given.")
