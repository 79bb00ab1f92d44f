#!/usr/bin/env python3
"""The web container's healthcheck (stdlib only): GET /healthz on the local gunicorn.

The request carries a host name from DJANGO_ALLOWED_HOSTS, so the check keeps
passing when that list names only the public domain (Django answers 400 to a
host it does not serve).
"""

import os
import sys
import urllib.request


def host() -> str:
    for name in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(","):
        name = name.strip().lstrip(".")  # ".example.com" allows example.com itself
        if name and name != "*":
            return name
    return "localhost"


def main() -> int:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": host()})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (a fixed local http URL)
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
