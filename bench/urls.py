"""The project's routes plus `/bench/ceiling/`: the cheapest token-authenticated DRF request.

The ceiling view does what every API request has to do (token authentication,
permission check, one primary-key query, a small JSON body) and nothing else,
so reservations/s over ceiling requests/s is the share of the framework's
throughput the reserve path keeps.
"""

from django.urls import include, path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import TicketType


class CeilingApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        row = TicketType.objects.filter(pk=request.query_params.get("tt")).values("id", "capacity").first()
        return Response({"ok": True, "ticket_type": row and str(row["id"])})


urlpatterns = [
    path("bench/ceiling/", CeilingApi.as_view(), name="bench-ceiling"),
    path("", include("ticketing.urls")),
]
