"""Helpers for tests of the site's pages (events, bookings, accounts)."""

import re


def page(response) -> str:
    """The HTML of a page answered 200."""
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()
