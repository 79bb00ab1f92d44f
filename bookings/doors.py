"""What the booking doors (site and API) take from a request for the services, in one place."""

from __future__ import annotations


def request_client_ip(request) -> str | None:
    """The client's IP address, for `booking_reserve(client_ip=...)` and its per-address limit.

    REMOTE_ADDR for now: the project's one trusted client-IP function (issue 15, item 8: the
    number of trusted proxies) replaces this body once it exists, for every door at once.
    """
    return request.META.get("REMOTE_ADDR") or None
