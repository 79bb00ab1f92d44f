"""Content-Security-Policy (django-csp), with the settings' header built once instead of per response.

django-csp's middleware builds the header from the settings on every response (copies of its
policy parts and two policy builds, tens of microseconds, which the hot reservation path would
pay on every request). A response that no view changed (`csp_update`, `csp_replace`, `csp`,
`csp_exempt`) and whose page used no nonce gets the same header each time: this middleware
sends the one django-csp built from the settings, and leaves every other response to
django-csp itself. The header is built again when the settings change (tests).
"""

from __future__ import annotations

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What django-csp's decorators put on a response; any of them means a policy of that response's own.
_PER_RESPONSE = frozenset({"_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
                           "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro"})
_DEBUG_EXEMPT = (404, 500)  # django-csp leaves Django's debug pages alone


@functools.cache
def _settings_headers() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(header, value, excluded path prefixes) for the policy and the report-only policy of the settings."""
    headers = []
    for header, name, report_only in ((HEADER, "CONTENT_SECURITY_POLICY", False),
                                      (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True)):
        value = build_policy(report_only=report_only)
        if value:
            prefixes = tuple((getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
            headers.append((header, value, prefixes))
    return tuple(headers)


@receiver(setting_changed)
def _policy_changed(*, setting, **kwargs) -> None:
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        _settings_headers.cache_clear()


class CSPMiddleware(_CSPMiddleware):
    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or not _PER_RESPONSE.isdisjoint(vars(response)):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        for header, value, prefixes in _settings_headers():
            if header not in response and not (prefixes and request.path_info.startswith(prefixes)):
                response[header] = value
        # As django-csp: a nonce asked for after the header was written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
