"""The Content-Security-Policy header (django-csp, core/csp.py) and the templates it relies on: no inline
scripts or styles anywhere. tests/browser/test_pages_under_csp.py checks that the pages work under it in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from csp.decorators import csp_exempt, csp_update
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from core.csp import CSPMiddleware

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
POLICY = "default-src 'self'"


def test_site_pages_admin_and_api_answers_carry_the_policy(client):
    for path in ("/", "/accounts/login/", "/admin/login/", "/api/v1/events/", "/api/schema/"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert POLICY in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path


def test_the_api_docs_widen_the_policy_only_for_what_their_bundles_need(client):
    swagger = client.get("/api/docs/")["Content-Security-Policy"]
    redoc = client.get("/api/redoc/")["Content-Security-Policy"]

    assert "img-src 'self' data:" in swagger and "unsafe-inline" not in swagger and "script-src" not in swagger
    assert "style-src 'self' 'unsafe-inline'" in redoc and "worker-src 'self' blob:" in redoc
    assert "script-src" not in redoc


def test_swagger_ui_loads_its_start_up_script_from_a_file(client):
    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert re.search(r'<script src="/api/docs/\?script="></script>', page)
    assert not re.search(r"<script>", page) and "<style" not in page
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_redoc_loads_nothing_from_other_sites(client):
    page = client.get("/api/redoc/").content.decode()

    assert "https://" not in page and "<style" not in page and not re.search(r"<script>", page)


# --- The middleware: django-csp's header, built once -----------------------------------------------------


def _both(view_response, path="/"):
    """The headers django-csp's middleware and the project's give the same response."""
    headers = []
    for middleware_class in (DjangoCSPMiddleware, CSPMiddleware):
        request = RequestFactory().get(path)
        middleware = middleware_class(lambda r: view_response())
        middleware.process_request(request)
        response = middleware.process_response(request, view_response())
        headers.append((response.get("Content-Security-Policy"), response.get("Content-Security-Policy-Report-Only")))
    return headers


def test_the_cached_header_is_django_csps():
    ours, theirs = _both(HttpResponse)
    assert ours == theirs and POLICY in ours[0]


def test_a_view_that_changes_its_policy_gets_django_csps_answer():
    def updated():
        return csp_update({"img-src": ["data:"]})(lambda request: HttpResponse())(None)

    def exempt():
        return csp_exempt()(lambda request: HttpResponse())(None)

    for view in (updated, exempt):
        ours, theirs = _both(view)
        assert ours == theirs
    assert "data:" in _both(updated)[1][0]
    assert _both(exempt)[1][0] is None


def test_a_changed_setting_changes_the_header(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"]},
                                                    "EXCLUDE_URL_PREFIXES": ["/excluded"]}

    ours, theirs = _both(HttpResponse)
    assert ours == theirs == ("default-src 'none'", "default-src 'self'")
    ours, theirs = _both(HttpResponse, "/excluded/page")
    assert ours == theirs == ("default-src 'none'", None)


def test_a_nonce_asked_for_after_the_header_was_written_is_an_error():
    from csp.exceptions import CSPNonceError

    request = RequestFactory().get("/")
    middleware = CSPMiddleware(lambda r: HttpResponse())
    middleware.process_request(request)
    middleware.process_response(request, HttpResponse())

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


# --- Templates: nothing inline ---------------------------------------------------------------------------

INLINE = re.compile(r"""<style\b|\sstyle\s*=|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=\s*["']|javascript:""", re.I)


def test_no_template_has_an_inline_script_style_or_event_handler():
    """E-mails excepted: a mail client does not apply the site's policy, and needs inline styles."""
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        if "emails" in template.parts:
            continue
        for number, line in enumerate(template.read_text().splitlines(), 1):
            if INLINE.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
