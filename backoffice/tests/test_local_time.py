from datetime import UTC, datetime

from backoffice.local_time import format_local


def test_an_oslo_evening_reads_as_oslo_time_with_its_zone():
    assert format_local(datetime(2026, 12, 5, 18, 30, tzinfo=UTC), "Europe/Oslo") == "Sat 5 Dec 2026, 19:30 CET"


def test_summer_time_and_unknown_zones():
    assert format_local(datetime(2026, 7, 1, 17, 30, tzinfo=UTC), "Europe/Oslo") == "Wed 1 Jul 2026, 19:30 CEST"
    assert format_local(datetime(2026, 7, 1, 17, 30, tzinfo=UTC), "Mars/Base") == "Wed 1 Jul 2026, 17:30 UTC"
    assert format_local(None, "UTC") == ""
