"""The client's IP address, as far as it can be trusted: one answer for every door.

Throttles, idempotency scopes, the login lockout (django-axes) and the
payment limits all key on it, so a client must not be able to choose it.
`X-Forwarded-For` is written by whoever sends the request; only the entries
appended by our own reverse proxies are true. `TRUSTED_PROXY_COUNT` says how
many proxies stand in front of the application:

- 0 (the default): the header is ignored; the client is the socket peer
  (`REMOTE_ADDR`).
- N: each trusted proxy appends the address it received the request from, so
  the N-th entry from the right is the address the outermost trusted proxy
  saw: the client. Entries further left are the client's own writing.

An entry that is not a plain IP address (a port, a name, junk, or a header
with fewer than N entries) is not trusted: the answer is then `REMOTE_ADDR`
(the nearest proxy), which only makes that client share a limit with others.
Addresses are returned in one spelling (`2001:db8::1`), at most 45 characters.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: `REMOTE_ADDR`, or the one the outermost of `TRUSTED_PROXY_COUNT` proxies saw."""
    meta = request.META
    remote = meta.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not forwarded:
        return remote
    hops = forwarded.rsplit(",", proxies)
    if len(hops) < proxies:
        return remote  # fewer entries than trusted proxies: the request did not come through them all
    try:
        address = ipaddress.ip_address(hops[-proxies].strip())
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # "fe80::1%<anything>": a zone is local to the proxy and unbounded in length
            return remote
        address = address.ipv4_mapped or address  # "::ffff:203.0.113.7" is 203.0.113.7
    return str(address)
