"""What every API view shares: throttles read live, permissions around them, a plain OPTIONS."""

from __future__ import annotations

from rest_framework import metadata
from rest_framework.settings import api_settings


class Metadata(metadata.SimpleMetadata):
    """OPTIONS: name, description, renders and parses, without DRF's per-field `actions`.

    The views declare no `serializer_class` (their nested Input serializers and the
    OpenAPI schema describe the input), so building `actions` would fail with a 500.
    """

    def determine_actions(self, request, view):
        return {}


class ScopedThrottleMixin:
    """Every API view: a view adds its tighter scope (`extra_throttles`) to the default throttles,
    unless throttling is off; OPTIONS is answered by `Metadata`.

    Permissions are checked in two steps around the throttles: first those that only ask who
    is calling (an anonymous write is 401 at once); then, once the caller is within its rate,
    those that read the resource of the URL (`reads_resource = True`), so a throttled caller
    costs no read and a refused lookup counts like any call.
    """

    extra_throttles: tuple = ()
    metadata_class = Metadata

    def check_permissions(self, request):
        permissions = self.get_permissions()
        self._check_each(request, [p for p in permissions if not getattr(p, "reads_resource", False)])
        self.check_throttles(request)
        self._check_each(request, [p for p in permissions if getattr(p, "reads_resource", False)])

    def _check_each(self, request, permissions) -> None:
        for permission in permissions:  # DRF's `check_permissions` loop
            if not permission.has_permission(request, self):
                self.permission_denied(request, message=getattr(permission, "message", None),
                                       code=getattr(permission, "code", None))

    def check_throttles(self, request):
        if getattr(request, "_throttles_checked", False):  # DRF's `initial` asks again after permissions
            return
        request._throttles_checked = True
        super().check_throttles(request)

    def get_throttles(self):
        # `APIView.throttle_classes` is read from the settings once, at import; read them now so
        # that a settings change (API_THROTTLE_RATES=off in a test, a load test) applies.
        classes = api_settings.DEFAULT_THROTTLE_CLASSES
        if not classes:  # API_THROTTLE_RATES=off
            return []
        return [cls() for cls in (*classes, *self.extra_throttles)]
