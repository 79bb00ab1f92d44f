"""Logging filters."""

import logging


class NotAConflict(logging.Filter):
    """Drops Django's "Conflict: <path>" warning for 409 answers: sold out, hold expired, a booking
    in the wrong state are the shop answering a buyer, not a problem with the server. In a
    sold-out storm they were one log line per request. Other 4xx and every 5xx are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 409
