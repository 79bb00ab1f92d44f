"""One e-mail about one row, sent once, with no lock or transaction held while the mail server works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.mail import EmailMessage
from django.db.models import Model
from django.utils import timezone

from core.db import locking_atomic


def send_once(*, model: type[Model], pk: Any, sent_field: str, ready: Callable[[Any], bool],
              build: Callable[[Any], EmailMessage], force: bool = False) -> bool:
    """Send `build(row)` for the row `pk` of `model` once (again only with `force`); True if sent.

    Claim, commit, then send: a short transaction locks that row alone
    (`of=("self",)`), checks `ready(row)` and that `sent_field` is empty, and
    stamps it; the message is built and handed to the mail server after the
    commit, so a slow mail server holds no lock (DESIGN.md section 6). Of
    concurrent runs one claims the row, the others find it stamped. A failure
    to build or send gives the claim back (the stamp is cleared if it is still
    this run's) and re-raises, so the task's retry sends it. A worker killed
    between the commit and the hand-over leaves the row stamped and the message
    unsent: at most once, never twice (the admin can resend a confirmation).
    """
    with locking_atomic():
        row = model.objects.select_for_update(no_key=True, of=("self",)).get(pk=pk)
        previous = getattr(row, sent_field)
        if not ready(row) or (previous is not None and not force):
            return False
        claimed = timezone.now()
        model.objects.filter(pk=pk).update(**{sent_field: claimed})
    try:
        build(row).send()
    except BaseException:
        model.objects.filter(pk=pk, **{sent_field: claimed}).update(**{sent_field: previous})
        raise
    return True
