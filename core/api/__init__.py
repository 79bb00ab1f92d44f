"""REST API plumbing shared by every app; `core.api.X` is what settings and the apps import.

    errors.py      problem-details bodies: the exception handler, `problem`, the API's 404
    inputs.py      StrictInput / StrictQuery, `validated`, `query_filters`, `Rendered`, MoneyField, JSONParser
    auth.py        CachedTokenAuthentication (django-rest-knox tokens, lookup cached)
    pagination.py  Pagination
    throttles.py   the throttle classes, by client address or user
    views.py       ScopedThrottleMixin (every API view) and its OPTIONS metadata
"""

from core.api.auth import CachedTokenAuthentication
from core.api.errors import exception_handler, not_found, problem
from core.api.inputs import (
    MONEY_PATTERN,
    JSONParser,
    MoneyField,
    Rendered,
    StrictInput,
    StrictQuery,
    query_filters,
    validated,
)
from core.api.pagination import Pagination
from core.api.throttles import (
    AnonRateThrottle,
    BookingsThrottle,
    IPRateThrottle,
    LoginThrottle,
    PayThrottle,
    UserRateThrottle,
)
from core.api.views import Metadata, ScopedThrottleMixin

__all__ = [
    "MONEY_PATTERN",
    "AnonRateThrottle",
    "BookingsThrottle",
    "CachedTokenAuthentication",
    "IPRateThrottle",
    "JSONParser",
    "LoginThrottle",
    "Metadata",
    "MoneyField",
    "Pagination",
    "PayThrottle",
    "Rendered",
    "ScopedThrottleMixin",
    "StrictInput",
    "StrictQuery",
    "UserRateThrottle",
    "exception_handler",
    "not_found",
    "problem",
    "query_filters",
    "validated",
]
