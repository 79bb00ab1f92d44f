from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from bookings.urls import urlpatterns as booking_pages
from core.accounts import SignupView
from payments.urls import urlpatterns as payment_pages


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (no inline script for the Content-Security-Policy)."""

    template_name = "api/swagger_ui.html"


class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"


# What the docs pages' bundled JavaScript needs beyond the site's policy (settings
# CONTENT_SECURITY_POLICY): Swagger UI's stylesheet draws its icons from data: URLs;
# Redoc writes its styles into <style> elements and runs its search in a blob: worker.
swagger_csp = csp_update({"img-src": [SELF, "data:"]})
redoc_csp = csp_update({"style-src": [SELF, UNSAFE_INLINE], "img-src": [SELF, "data:"],
                        "worker-src": [SELF, "blob:"]})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(("ticketing.api_urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", swagger_csp(SwaggerView.as_view(url_name="schema")), name="swagger-ui"),
    path("api/redoc/", redoc_csp(RedocView.as_view(url_name="schema")), name="redoc"),
    # The booking pages: bookings' own views and the checkout views of payments, one namespace.
    path("bookings/", include(([*booking_pages, *payment_pages], "bookings"))),
    path("accounts/signup/", SignupView.as_view(), name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("events.urls")),
]
